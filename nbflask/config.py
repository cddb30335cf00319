"""Typed deployment settings: defaults < YAML file < environment < CLI flags.

One frozen object describes a deployment, so every part of the server reads the same
validated values. Every mistake a user can make in a file (unknown key, wrong type, missing
certificate, bad base_url) becomes one `ConfigError` line naming where the value came from,
the key, what was expected and what was found, instead of a traceback deep in start-up.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from .passwords import NotAHash, check_hash

ENV_CONFIG = "NBFLASK_CONFIG"
ENV_PREFIX = "NBFLASK_"
MIN_TERMINAL_INPUT_BUFFER = 65536  # bytes of input a terminal may hold while its program is not reading


class ConfigError(Exception):
    """A setting that cannot be used; the message is one line a user can act on."""


@dataclass(frozen=True)
class ServerSettings:
    ip: str = "127.0.0.1"
    port: int = 8888
    port_retries: int = 50
    open_browser: bool = True
    base_url: str = "/"
    certfile: str | None = None
    keyfile: str | None = None
    trust_xheaders: bool = False
    websocket_compression: bool = False
    max_body_size: int = 100 * 1024 * 1024
    websocket_send_buffer: int = 64 * 1024 * 1024
    handshake_timeout: int = 20
    header_timeout: int = 20
    keepalive_timeout: int = 30
    body_timeout: int = 20


@dataclass(frozen=True)
class AuthSettings:
    token: str = "auto"
    password: str | None = None
    allow_origin: list[str] = field(default_factory=list)
    allow_remote_access: bool = False
    local_hostnames: list[str] = field(default_factory=lambda: ["localhost"])
    session_lifetime: int = 30 * 24 * 3600
    login_max_failures: int = 5
    login_window: int = 60
    content_security_policy: str = "frame-ancestors 'self'"


@dataclass(frozen=True)
class StoreSettings:
    """`class` picks the store; every other key is an option of that store."""

    class_name: str = "file"
    root_dir: str = "."
    allow_hidden: bool = False
    max_checkpoints: int = 5
    checkpoints: str = "single"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KernelSettings:
    default: str = "python3"
    cull_idle_timeout: int = 0
    cull_interval: int = 300
    cull_connected: bool = False
    cull_busy: bool = False
    autorestart: bool = True
    restart_limit: int = 5
    startup_timeout: int = 60
    ping_interval: int = 30
    replay_buffer_bytes: int | None = None  # None: server.websocket_send_buffer (see _check)
    replay_buffer_age: int = 600
    recording_bytes: int = 64 * 1024 * 1024
    recording_age: int = 86400
    recording_stream_chars: int = 1_000_000
    recording_save_interval: int = 10
    transport: str = "ipc"
    host: str = "own"


@dataclass(frozen=True)
class TerminalSettings:
    enabled: bool = True
    shell_command: list[str] = field(default_factory=list)
    root_dir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    cull_inactive_timeout: int = 0
    cull_interval: int = 300
    scrollback_bytes: int = 256 * 1024
    input_buffer_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class UISettings:
    default_url: str = "/tree"
    expose_app_in_browser: bool = False


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    kernels: KernelSettings = field(default_factory=KernelSettings)
    terminals: TerminalSettings = field(default_factory=TerminalSettings)
    ui: UISettings = field(default_factory=UISettings)
    source: str | None = None

    @property
    def secure(self) -> bool:
        return self.server.certfile is not None

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def kernel_send_buffer(self) -> int:
        """Bytes a kernel websocket's client may leave unread before it is closed as too slow:
        no more than the replay buffer keeps, so a client closed so finds what it missed when
        it reconnects (replay off: server.websocket_send_buffer)."""
        return self.kernels.replay_buffer_bytes or self.server.websocket_send_buffer


SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "auth": AuthSettings,
    "store": StoreSettings,
    "kernels": KernelSettings,
    "terminals": TerminalSettings,
    "ui": UISettings,
}

# One help line per option: `nbflask config init` writes them next to the defaults.
HELP: dict[str, str] = {
    "server.ip": "interface to listen on; '*' = every interface (IPv4 and IPv6)",
    "server.port": "port to listen on",
    "server.port_retries": "if the port is busy, try this many following ports",
    "server.open_browser": "open a browser on the start page (ui.default_url) at start",
    "server.base_url": "URL prefix the whole server lives under, e.g. /ipython/",
    "server.certfile": "PEM certificate for https (may also hold the key, like the seed's mycert.pem)",
    "server.keyfile": "PEM private key, when not inside certfile",
    "server.trust_xheaders": "honour X-Forwarded-For/Proto/Host/Prefix from a proxy in front",
    "server.websocket_compression": "offer permessage-deflate on websockets (costs CPU)",
    "server.max_body_size": "largest request body in bytes; larger ones get 413",
    "server.websocket_send_buffer": "bytes a slow websocket client may leave unread before it is closed",
    "server.handshake_timeout": "seconds a client has to finish its TLS handshake, else it is disconnected",
    "server.header_timeout": "seconds a client has to send a request's line and headers (a request's body"
                             " has body_timeout, a websocket no limit), else it is disconnected",
    "server.keepalive_timeout": "seconds an idle kept-alive connection waits for its next request",
    "server.body_timeout": "seconds a request's body may go without a byte arriving (an upload that makes"
                           " progress is never cut), else the connection is closed",
    "auth.token": "auto (random at each start) | a fixed token | '' (only with a password)",
    "auth.password": "hash from `nbflask passwd` (argon2:...) or a legacy sha1:salt:hash",
    "auth.allow_origin": "extra origins allowed for websockets and CORS",
    "auth.allow_remote_access": "accept any Host header (needed behind some proxies)",
    "auth.local_hostnames": "host names accepted in the Host header while serving locally",
    "auth.session_lifetime": "seconds a login cookie stays valid",
    "auth.login_max_failures": "login attempts allowed per client within login_window before 429",
    "auth.login_window": "seconds over which login attempts are counted (and a client stays blocked)",
    "auth.content_security_policy": "Content-Security-Policy header on every response",
    "store.class": "file | memory | swift | package.module:Class",
    "store.root_dir": "folder the notebooks live in (file store)",
    "store.allow_hidden": "show and serve files and folders whose name starts with '.'",
    "store.max_checkpoints": "with checkpoints: multiple, checkpoints kept per file; the oldest goes past it",
    "store.checkpoints": "single: one checkpoint per file, as in Jupyter; multiple: several per file",
    "kernels.default": "kernelspec used when a client names none",
    "kernels.cull_idle_timeout": "shut down kernels idle this many seconds; 0 = never",
    "kernels.cull_interval": "seconds between checks for idle kernels",
    "kernels.cull_connected": "also cull idle kernels that have a browser connected",
    "kernels.cull_busy": "also cull kernels that are busy",
    "kernels.autorestart": "restart a kernel that dies",
    "kernels.restart_limit": "automatic restarts in a row before a dying kernel is declared dead",
    "kernels.startup_timeout": "seconds a kernel may take to answer after it starts, else it is stopped",
    "kernels.ping_interval": "seconds between websocket pings that keep idle kernel connections open",
    "kernels.replay_buffer_bytes": "iopub bytes kept per kernel for clients that reconnect (newest kept);"
                                   " null: server.websocket_send_buffer; 0: no replay",
    "kernels.replay_buffer_age": "seconds iopub messages are kept for clients that reconnect",
    "kernels.recording_bytes": "bytes of recent cell runs the kernel host keeps per kernel, all they cost"
                               " counted (code, outputs, records; 0: none)",
    "kernels.recording_age": "seconds a finished cell run's outputs are kept by the kernel host",
    "kernels.recording_stream_chars": "characters kept per stream output (the newest, and a note of the cut)",
    "kernels.recording_save_interval": "seconds between saves of a running cell's outputs into a notebook no"
                                       " page has open (at its end too; 0: never)",
    "kernels.transport": "ipc (unix sockets in the private runtime folder, no port open) | tcp (on loopback)",
    "kernels.host": "own: the server starts its kernel host and stops it (and the kernels) when it stops;"
                    " service: use the one `nbflask kernel-host` runs, so kernels outlive web restarts",
    "terminals.enabled": "serve Jupyter's terminals (/api/terminals, their websocket); false: no such routes",
    "terminals.shell_command": "command a terminal runs, e.g. [bash, -l]; [] = the user's login shell (-l)",
    "terminals.root_dir": "folder terminals start in; null = store.root_dir (file store), else home",
    "terminals.env": "extra environment variables for terminals, e.g. {EDITOR: nano}",
    "terminals.cull_inactive_timeout": "stop terminals without input or output this many seconds; 0 = never",
    "terminals.cull_interval": "seconds between checks for inactive terminals",
    "terminals.scrollback_bytes": "recent output kept per terminal for pages that (re)connect (newest kept)",
    "terminals.input_buffer_bytes": "input held per terminal while its program is not reading (>= 65536)",
    "ui.default_url": "page `/` opens, below base_url: /tree (Notebook 7) or /lab (JupyterLab)",
    "ui.expose_app_in_browser": "pages expose their app as window.jupyterapp (UI test tools use it)",
}


def _yaml_key(field_name: str) -> str:
    return "class" if field_name == "class_name" else field_name


def _describe_type(annotation: Any, plural: bool = False) -> str:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(_describe_type(a) for a in args) + " or null"
    if origin is list:
        return "a list of " + _describe_type(typing.get_args(annotation)[0], plural=True)
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        keys, values = _describe_type(key_type, plural=True), _describe_type(value_type, plural=True)
        return f"a mapping of {keys} to {values}"
    if plural:
        return {int: "integers", float: "numbers", str: "strings"}.get(annotation, str(annotation))
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _coerce(annotation: Any, value: Any) -> Any:
    """Return `value` as `annotation`, or raise TypeError; YAML already typed it."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in typing.get_args(annotation):
            return None
        for arg in typing.get_args(annotation):
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value)
            except TypeError:
                pass
        raise TypeError
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        if not isinstance(value, Mapping):
            raise TypeError
        return {_coerce(key_type, k): _coerce(value_type, v) for k, v in value.items()}
    if origin is list:
        (item,) = typing.get_args(annotation)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise TypeError
        return [_coerce(item, v) for v in value]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise TypeError
    if isinstance(value, annotation):
        return value
    raise TypeError


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Layers:
    """Merges the layers of raw values while remembering where each one came from."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        self.origins: dict[tuple[str, str], str] = {}

    def add(self, data: Any, origin: str, where: str | None = None) -> None:
        if data is None:
            return
        if not isinstance(data, Mapping):
            raise ConfigError(f"{origin}: expected a mapping of sections, found {type(data).__name__}")
        for section, entries in data.items():
            if section not in SECTIONS:
                raise ConfigError(
                    f"{origin}: unknown section '{section}'{_did_you_mean(str(section), list(SECTIONS))};"
                    f" expected one of {', '.join(SECTIONS)}"
                )
            if entries is None:
                continue
            if not isinstance(entries, Mapping):
                raise ConfigError(
                    f"{origin}: {section}: expected a mapping of settings, found {entries!r}"
                )
            for key, value in entries.items():
                self.values[section][str(key)] = value
                self.origins[(section, str(key))] = where or origin

    def build(self) -> Settings:
        built = {name: self._section(name, cls) for name, cls in SECTIONS.items()}
        return Settings(**built)

    def _section(self, name: str, cls: type) -> Any:
        hints = typing.get_type_hints(cls)
        known = {_yaml_key(f.name): f for f in dataclasses.fields(cls) if f.name != "options"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in self.values[name].items():
            origin = self.origins[(name, key)]
            if key not in known:
                if cls is StoreSettings:
                    extra[key] = value
                    continue
                raise ConfigError(
                    f"{origin}: unknown key '{name}.{key}'{_did_you_mean(key, list(known))};"
                    f" known keys in '{name}': {', '.join(known)}"
                )
            f = known[key]
            try:
                kwargs[f.name] = _coerce(hints[f.name], value)
            except TypeError:
                raise ConfigError(
                    f"{origin}: {name}.{key}: expected {_describe_type(hints[f.name])}, found {value!r}"
                ) from None
        if cls is StoreSettings:
            kwargs["options"] = extra
        return cls(**kwargs)


def _check(settings: Settings, layers: _Layers) -> Settings:
    """Cross-field checks and normalisation that types alone cannot express."""

    def origin(section: str, key: str) -> str:
        return layers.origins.get((section, key), "defaults")

    server = settings.server
    base_url = server.base_url
    if not base_url.startswith("/") or "//" in base_url or any(c in base_url for c in "?#\\ \0"):
        raise ConfigError(
            f"{origin('server', 'base_url')}: server.base_url: expected a path such as "
            f"'/' or '/ipython/', found {base_url!r}"
        )
    if not base_url.endswith("/"):
        base_url += "/"
    if not 0 <= server.port <= 65535:
        raise ConfigError(
            f"{origin('server', 'port')}: server.port: expected 0-65535, found {server.port}"
        )
    if server.max_body_size <= 0:
        raise ConfigError(
            f"{origin('server', 'max_body_size')}: server.max_body_size: expected a positive"
            f" number of bytes, found {server.max_body_size}"
        )
    if server.port_retries < 0:
        raise ConfigError(
            f"{origin('server', 'port_retries')}: server.port_retries: expected 0 or more,"
            f" found {server.port_retries}"
        )
    files: dict[str, str | None] = {}
    for key in ("certfile", "keyfile"):
        value = getattr(server, key)
        if value is not None:
            path = Path(value).expanduser()
            if not path.is_file():
                raise ConfigError(
                    f"{origin('server', key)}: server.{key}: expected a readable PEM file,"
                    f" found no file at '{value}'"
                )
            value = str(path.resolve())
        files[key] = value
    if files["keyfile"] and not files["certfile"]:
        raise ConfigError(
            f"{origin('server', 'keyfile')}: server.keyfile: set server.certfile too"
        )
    if server.websocket_send_buffer <= 0:
        raise ConfigError(
            f"{origin('server', 'websocket_send_buffer')}: server.websocket_send_buffer: expected"
            f" a positive number of bytes, found {server.websocket_send_buffer}"
        )
    for key in ("handshake_timeout", "header_timeout", "keepalive_timeout", "body_timeout"):
        if getattr(server, key) <= 0:
            raise ConfigError(
                f"{origin('server', key)}: server.{key}: expected a positive number of seconds,"
                f" found {getattr(server, key)}"
            )
    if settings.auth.token == "" and not settings.auth.password:
        raise ConfigError(
            f"{origin('auth', 'token')}: auth.token: '' disables the token, which is only"
            " allowed together with auth.password (run `nbflask passwd`)"
        )
    if settings.auth.password:
        try:
            check_hash(settings.auth.password)
        except NotAHash as exc:
            raise ConfigError(
                f"{origin('auth', 'password')}: auth.password: expected a hash, found what looks like"
                f" a plain-text password ({exc}); run `nbflask passwd` and paste its output"
            ) from None
    for key in ("session_lifetime", "login_max_failures", "login_window"):
        if getattr(settings.auth, key) <= 0:
            raise ConfigError(
                f"{origin('auth', key)}: auth.{key}: expected a positive integer,"
                f" found {getattr(settings.auth, key)}"
            )
    if settings.store.max_checkpoints < 1:
        raise ConfigError(
            f"{origin('store', 'max_checkpoints')}: store.max_checkpoints: expected 1 or more,"
            f" found {settings.store.max_checkpoints}"
        )
    if settings.store.checkpoints not in ("single", "multiple"):
        raise ConfigError(
            f"{origin('store', 'checkpoints')}: store.checkpoints: expected single or multiple,"
            f" found {settings.store.checkpoints!r}"
        )
    if settings.kernels.cull_idle_timeout < 0 or settings.kernels.cull_interval <= 0:
        raise ConfigError(
            f"{origin('kernels', 'cull_interval')}: kernels.cull_*: expected positive seconds"
        )
    if settings.kernels.transport not in ("ipc", "tcp"):
        raise ConfigError(
            f"{origin('kernels', 'transport')}: kernels.transport: expected 'ipc' or 'tcp',"
            f" found {settings.kernels.transport!r}"
        )
    if settings.kernels.host not in ("own", "service"):
        raise ConfigError(
            f"{origin('kernels', 'host')}: kernels.host: expected 'own' or 'service',"
            f" found {settings.kernels.host!r}"
        )
    replay_bytes = settings.kernels.replay_buffer_bytes
    if replay_bytes is None:  # as much as a slow client may leave unread (kernel_send_buffer)
        replay_bytes = server.websocket_send_buffer
    kernels = dataclasses.replace(settings.kernels, replay_buffer_bytes=replay_bytes)
    settings = dataclasses.replace(settings, kernels=kernels)
    if replay_bytes > server.websocket_send_buffer:
        raise ConfigError(
            f"{origin('kernels', 'replay_buffer_bytes')}: kernels.replay_buffer_bytes: expected at most"
            f" server.websocket_send_buffer ({server.websocket_send_buffer}), found"
            f" {settings.kernels.replay_buffer_bytes}: a replay that cannot fit would close the client"
            " again and again"
        )
    for key in ("replay_buffer_bytes", "replay_buffer_age", "recording_bytes", "recording_age",
                "recording_stream_chars", "recording_save_interval"):
        if getattr(settings.kernels, key) < 0:
            what = "replay" if key.startswith("replay") else "recording"
            raise ConfigError(
                f"{origin('kernels', key)}: kernels.{key}: expected 0 (no {what}) or more,"
                f" found {getattr(settings.kernels, key)}"
            )
    terminals = settings.terminals
    if terminals.cull_inactive_timeout < 0 or terminals.cull_interval <= 0:
        raise ConfigError(
            f"{origin('terminals', 'cull_interval')}: terminals.cull_*: expected positive seconds"
            " (cull_inactive_timeout 0 = never)"
        )
    if not 0 < terminals.scrollback_bytes <= server.websocket_send_buffer:
        raise ConfigError(
            f"{origin('terminals', 'scrollback_bytes')}: terminals.scrollback_bytes: expected 1 to"
            f" server.websocket_send_buffer ({server.websocket_send_buffer}),"
            f" found {terminals.scrollback_bytes}"
        )
    if terminals.input_buffer_bytes < MIN_TERMINAL_INPUT_BUFFER:
        raise ConfigError(
            f"{origin('terminals', 'input_buffer_bytes')}: terminals.input_buffer_bytes: expected at"
            f" least {MIN_TERMINAL_INPUT_BUFFER}, found {terminals.input_buffer_bytes}"
        )
    if terminals.root_dir is not None and not Path(terminals.root_dir).expanduser().is_dir():
        raise ConfigError(
            f"{origin('terminals', 'root_dir')}: terminals.root_dir: expected a folder, found no folder"
            f" at '{terminals.root_dir}'"
        )
    default_url = settings.ui.default_url
    if not default_url.startswith("/") or default_url.startswith("//") or "\\" in default_url:
        raise ConfigError(
            f"{origin('ui', 'default_url')}: ui.default_url: expected a path on this server such as"
            f" '/tree' or '/lab', found {default_url!r}"
        )
    return dataclasses.replace(
        settings, server=dataclasses.replace(server, base_url=base_url, **files)
    )


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Parse one YAML config file, turning I/O and syntax problems into a ConfigError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{where}: not valid YAML: {problem}") from None


def environment_layer(environ: Mapping[str, str]) -> dict[str, tuple[dict[str, Any], str]]:
    """Settings from `NBFLASK_<SECTION>_<KEY>` variables, each parsed as a YAML scalar."""
    found: dict[str, tuple[dict[str, Any], str]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG:
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section, _, key = rest.partition("_")
        if section not in SECTIONS or not key:
            continue
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        found[name] = ({section: {key: value}}, f"environment {name}")
    return found


def load_settings(
    config: str | os.PathLike[str] | Mapping[str, Any] | Settings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    override_origins: Mapping[tuple[str, str], str] | None = None,
) -> Settings:
    """Build the validated settings for one deployment.

    `config` is a YAML path, a dict shaped like the YAML, a Settings (returned as is), or
    None to use the file named by NBFLASK_CONFIG. `overrides` are CLI flags, applied last.
    """
    if isinstance(config, Settings):
        return config
    environ = os.environ if environ is None else environ
    layers = _Layers()
    source: str | None = None
    if config is None and environ.get(ENV_CONFIG):
        config = environ[ENV_CONFIG]
    if isinstance(config, Mapping):
        layers.add(config, "config")
    elif config is not None:
        source = str(config)
        layers.add(read_yaml(config), source)
    for data, origin in environment_layer(environ).values():
        layers.add(data, origin)
    if overrides:
        for section, entries in overrides.items():
            for key, value in entries.items():
                where = (override_origins or {}).get((section, key), "command line")
                layers.add({section: {key: value}}, where)
    settings = dataclasses.replace(layers.build(), source=source)
    return _check(settings, layers)


def user_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Per-user folder for profiles (`nbflask config init --profile NAME`)."""
    environ = os.environ if environ is None else environ
    if environ.get("NBFLASK_CONFIG_DIR"):
        return Path(environ["NBFLASK_CONFIG_DIR"])
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "nbflask"


def profile_path(name: str, environ: Mapping[str, str] | None = None) -> Path:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"profile: expected a plain name such as 'nbserver', found {name!r}")
    return user_config_dir(environ) / "profiles" / f"{name}.yaml"


def default_yaml() -> str:
    """Every option with its default and a one-line comment: the body of `config init`."""
    lines = ["# nbflask configuration: every option, with its default.", ""]
    defaults = Settings()
    for section, cls in SECTIONS.items():
        lines.append(f"{section}:")
        for f in dataclasses.fields(cls):
            if f.name == "options":
                continue
            key = _yaml_key(f.name)
            value = getattr(getattr(defaults, section), f.name)
            dumped = yaml.safe_dump(value, default_flow_style=True).strip()
            if dumped.endswith("\n..."):
                dumped = dumped[: -len("\n...")]
            dumped = dumped.removesuffix("...").strip()
            lines.append(f"  # {HELP.get(f'{section}.{key}', '')}")
            lines.append(f"  {key}: {dumped}")
        lines.append("")
    return "\n".join(lines)


def set_in_file(path: str | os.PathLike[str], section: str, key: str, value: str) -> None:
    """Set `section.key` to the string `value` in a YAML file, leaving every other line as is.

    Comments and layout survive because only the key's line is replaced (or one line added);
    the result is parsed again and must equal the old settings plus the new value, so a file
    this cannot edit safely is refused rather than damaged. A new file is created 0600.
    """
    from . import runtime

    target = Path(path)
    text = target.read_text(encoding="utf-8") if target.exists() else ""
    before = (read_yaml(target) if text.strip() else None) or {}
    if not isinstance(before, Mapping) or not isinstance(before.get(section) or {}, Mapping):
        raise ConfigError(f"{path}: expected a mapping of sections with '{section}' a mapping")
    scalar = yaml.safe_dump(value, default_style="'", width=1 << 20).strip()
    lines = text.splitlines(keepends=True)
    header = next((i for i, line in enumerate(lines) if line.split("#")[0].rstrip() == f"{section}:"), None)
    if header is None:
        prefix = "" if not text or text.endswith("\n") else "\n"
        lines.append(f"{prefix}{section}:\n  {key}: {scalar}\n")
    else:
        end = header + 1
        while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t#"):
            end += 1
        body = [i for i in range(header + 1, end) if lines[i].split("#")[0].strip()]
        first = lines[body[0]] if body else "  "
        indent = first[: len(first) - len(first.lstrip())]
        mine = next((i for i in body if lines[i].startswith(f"{indent}{key}:")), None)
        if mine is None:
            lines.insert(header + 1, f"{indent}{key}: {scalar}\n")
        else:
            lines[mine] = f"{indent}{key}: {scalar}\n"
    updated = "".join(lines)
    expected = {**before, section: {**(before.get(section) or {}), key: value}}
    try:
        matches = yaml.safe_load(updated) == expected
    except yaml.YAMLError:
        matches = False
    if not matches:
        raise ConfigError(
            f"{path}: cannot set {section}.{key} without disturbing the rest of the file;"
            f" set it by hand under '{section}:'"
        )
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o600
    runtime.write_private(target, updated.encode("utf-8"))
    target.chmod(mode)
