"""What each setting must be beyond its type: a table of rules per section, checked in order.

Types are checked while the layers are merged (`layers.py`); what is left is ranges, choices,
files that must be there and settings that depend on each other. Each rule is one line of a
table below, and a broken one stops start-up with one line naming where the value came from:
`<file, variable or flag>: <section.key>: expected <what>, found <value>`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..passwords import NotAHash, check_hash
from .settings import (
    MAX_CONTAINER_NAME,
    MIN_TERMINAL_INPUT_BUFFER,
    SECTIONS,
    AuthSettings,
    ConfigError,
    KernelSettings,
    ServerSettings,
    Settings,
    StoreSettings,
    SwiftSettings,
    TerminalSettings,
    UISettings,
)

#: Where a key of a section was set (a file, `environment NAME`, a flag), None if nowhere.
Origin = Callable[[str, str], str | None]
#: Whether a rule holds, given the value of its key and all the settings.
Holds = Callable[[Any, Settings], bool]


@dataclass(frozen=True)
class Rule:
    """One thing a key's value must be, and the line that says so when it is not."""

    key: str
    holds: Holds
    #: What the value must be, as the line says it (a function of the settings when it
    #: depends on another key).
    expected: str | Callable[[Settings], str] = ""
    #: How the line shows the value; None: it does not.
    found: Callable[[Any], str] | None = repr
    #: Said after the value: why the rule is there.
    note: str = ""
    #: The whole line after the key, for a rule that is no "expected ..., found ...".
    says: str = ""
    #: The name the line gives, when the rule stands for several keys.
    shown_as: str = ""
    #: Where the line points when `key` was set nowhere: the key that made the rule apply.
    origin_of: str = ""

    def line(self, section: str, value: Any, settings: Settings) -> str:
        name = self.shown_as or f"{section}.{self.key}"
        if self.says:
            return f"{name}: {self.says}"
        expected = self.expected(settings) if callable(self.expected) else self.expected
        found = "" if self.found is None else f", found {self.found(value)}"
        return f"{name}: expected {expected}{found}{self.note}"


def _positive(value: int, _: Settings) -> bool:
    return value > 0


def _not_negative(value: int | None, _: Settings) -> bool:
    return value is None or value >= 0


def _given(value: str, _: Settings) -> bool:
    return bool(value)


def _url_path(value: str, _: Settings) -> bool:
    return value.startswith("/") and "//" not in value and not any(c in value for c in "?#\\ \0")


def _file_or_none(value: str | None, _: Settings) -> bool:
    return value is None or Path(value).expanduser().is_file()


def _not_a_hash(value: str) -> str | None:
    """Why `value` is not a password hash, or None if it is one."""
    try:
        check_hash(value)
    except NotAHash as exc:
        return str(exc)
    return None


def _auth_version(value: str) -> str | None:
    """Swift's auth version as swiftclient takes it ('1' or '3') from how YAML may write it
    (1, '1.0', 'v3', ...); None if it names no version the store speaks."""
    return {"1": "1", "1.0": "1", "3": "3"}.get(value.lower().lstrip("v"))


def _keystone(settings: Settings) -> bool:
    swift = settings.store.swift
    return swift is not None and _auth_version(swift.auth_version) == "3"


def _folder_path(value: str) -> str | None:
    """`value` as the store's API path of a folder ('/team-a/' is 'team-a'), None if it is no path."""
    from ..stores.base import InvalidPath, normalize_path  # nbflask.stores imports this package

    try:
        return normalize_path(value)
    except InvalidPath:
        return None


def _or_nothing(value: Any) -> str:
    return "nothing" if value is None else repr(value)


SEND_BUFFER = "server.websocket_send_buffer"

RULES: dict[type, tuple[Rule, ...]] = {
    ServerSettings: (
        Rule("base_url", _url_path, "a path such as '/' or '/ipython/'"),
        Rule("port", lambda v, _: 0 <= v <= 65535, "0-65535"),
        Rule("max_body_size", _positive, "a positive number of bytes"),
        Rule("port_retries", _not_negative, "0 or more"),
        Rule("certfile", _file_or_none, "a readable PEM file", found=lambda v: f"no file at '{v}'"),
        Rule("keyfile", _file_or_none, "a readable PEM file", found=lambda v: f"no file at '{v}'"),
        Rule("keyfile", lambda v, s: v is None or s.server.certfile is not None,
             says="set server.certfile too"),
        Rule("websocket_send_buffer", _positive, "a positive number of bytes"),
        *(
            Rule(key, _positive, "a positive number of seconds")
            for key in ("handshake_timeout", "header_timeout", "keepalive_timeout", "body_timeout")
        ),
    ),
    AuthSettings: (
        Rule(
            "token",
            lambda v, s: v != "" or bool(s.auth.password),
            says="'' disables the token, which is only allowed together with auth.password"
            " (run `nbflask passwd`)",
        ),
        Rule(
            "password",
            lambda v, _: not v or _not_a_hash(v) is None,
            "a hash",
            found=lambda v: f"what looks like a plain-text password ({_not_a_hash(v)})",
            note="; run `nbflask passwd` and paste its output",
        ),
        *(
            Rule(key, _positive, "a positive integer")
            for key in ("session_lifetime", "login_max_failures", "login_window")
        ),
    ),
    StoreSettings: (
        Rule("max_checkpoints", lambda v, _: v >= 1, "1 or more"),
        Rule("checkpoints", lambda v, _: v in ("single", "multiple"), "single or multiple"),
    ),
    SwiftSettings: (
        *(Rule(key, _given, "a non-empty string") for key in ("auth_url", "user", "key")),
        Rule(
            "auth_version",
            lambda v, _: _auth_version(v) is not None,
            "1 (tempauth, Rackspace-style v1.0) or 3 (Keystone)",
        ),
        *(
            Rule(
                key,
                lambda v, s: v is None or _keystone(s),
                says="only used with auth_version 3 (Keystone); v1 auth returns a single storage URL",
            )
            for key in ("region", "project_name")
        ),
        Rule(
            "project_name",
            lambda v, s: bool(v) or not _keystone(s),
            "the project that owns the container (auth_version 3, Keystone, needs one)",
            found=_or_nothing,
            origin_of="auth_version",
        ),
        Rule(
            "container",
            lambda v, _: bool(v) and "/" not in v and len(v.encode()) <= MAX_CONTAINER_NAME,
            f"a name without '/' of 1 to {MAX_CONTAINER_NAME} bytes",
        ),
        Rule("prefix", lambda v, _: _folder_path(v) is not None,
             "a folder inside the container such as 'team-a'"),
        Rule("timeout", _positive, "seconds > 0", found=lambda v: f"{v:g}"),
        Rule("retries", _not_negative, "0 or more"),
    ),
    KernelSettings: (
        Rule(
            "cull_interval",
            lambda v, s: v > 0 and s.kernels.cull_idle_timeout >= 0,
            "positive seconds",
            found=None,
            shown_as="kernels.cull_*",
        ),
        Rule("transport", lambda v, _: v in ("ipc", "tcp"), "'ipc' or 'tcp'"),
        Rule("host", lambda v, _: v in ("own", "service"), "'own' or 'service'"),
        Rule(
            "replay_buffer_bytes",
            lambda v, s: v is None or v <= s.server.websocket_send_buffer,
            lambda s: f"at most {SEND_BUFFER} ({s.server.websocket_send_buffer})",
            note=": a replay that cannot fit would close the client again and again",
        ),
        *(Rule(key, _not_negative, "0 (no replay) or more") for key in ("replay_buffer_bytes",
                                                                        "replay_buffer_age")),
        *(Rule(key, _not_negative, "0 (no recording) or more") for key in ("recording_bytes", "recording_age",
                                                                           "recording_stream_chars",
                                                                           "recording_save_interval")),
    ),
    TerminalSettings: (
        Rule(
            "cull_interval",
            lambda v, s: v > 0 and s.terminals.cull_inactive_timeout >= 0,
            "positive seconds (cull_inactive_timeout 0 = never)",
            found=None,
            shown_as="terminals.cull_*",
        ),
        Rule(
            "scrollback_bytes",
            lambda v, s: 0 < v <= s.server.websocket_send_buffer,
            lambda s: f"1 to {SEND_BUFFER} ({s.server.websocket_send_buffer})",
        ),
        Rule("input_buffer_bytes", lambda v, _: v >= MIN_TERMINAL_INPUT_BUFFER,
             f"at least {MIN_TERMINAL_INPUT_BUFFER}"),
        Rule(
            "root_dir",
            lambda v, _: v is None or Path(v).expanduser().is_dir(),
            "a folder",
            found=lambda v: f"no folder at '{v}'",
        ),
    ),
    UISettings: (
        Rule(
            "default_url",
            lambda v, _: v.startswith("/") and not v.startswith("//") and "\\" not in v,
            "a path on this server such as '/tree' or '/lab'",
        ),
    ),
}


def _parts(settings: Settings) -> Iterator[tuple[str, Any]]:
    """Each section's settings, in order; the swift store's options are part of `store`."""
    for section in SECTIONS:
        yield section, getattr(settings, section)
        if section == "store" and settings.store.swift is not None:
            yield section, settings.store.swift


def check(settings: Settings, origin: Origin) -> Settings:
    """The settings in their plain form if every rule holds; else the first broken rule's line."""
    for section, values in _parts(settings):
        for rule in RULES[type(values)]:
            value = getattr(values, rule.key)
            if not rule.holds(value, settings):
                where = origin(section, rule.key) or (rule.origin_of and origin(section, rule.origin_of))
                raise ConfigError(f"{where or 'defaults'}: {rule.line(section, value, settings)}")
    return _plain(settings)


def _plain(settings: Settings) -> Settings:
    """What the rules let through, in the one form the rest of the server reads."""
    server, kernels, store = settings.server, settings.kernels, settings.store
    server = dataclasses.replace(
        server,
        base_url=server.base_url if server.base_url.endswith("/") else server.base_url + "/",
        certfile=_resolved(server.certfile),
        keyfile=_resolved(server.keyfile),
    )
    if kernels.replay_buffer_bytes is None:  # as much as a slow client may leave unread (kernel_send_buffer)
        kernels = dataclasses.replace(kernels, replay_buffer_bytes=server.websocket_send_buffer)
    if store.swift is not None:
        swift = store.swift
        plain = {"auth_version": _auth_version(swift.auth_version), "prefix": _folder_path(swift.prefix)}
        store = dataclasses.replace(store, swift=dataclasses.replace(swift, **plain))
    return dataclasses.replace(settings, server=server, kernels=kernels, store=store)


def _resolved(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())
