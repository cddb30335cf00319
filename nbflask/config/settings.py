"""What a deployment can set: one frozen dataclass per YAML section, each field a key.

A field's default is the key's default and its metadata carries the one-line help that
`nbflask config init` writes next to it, so a key, its type, its default and what it means
are written once, here. What a value must be beyond its type is in `checks.py`.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

ENV_CONFIG = "NBFLASK_CONFIG"
ENV_PREFIX = "NBFLASK_"
MIN_TERMINAL_INPUT_BUFFER = 65536  # bytes of input a terminal may hold while its program is not reading
#: Swift's limit on a container's name in bytes (see `swift capabilities`).
MAX_CONTAINER_NAME = 256


class ConfigError(Exception):
    """A setting that cannot be used; the message is one line a user can act on."""


@dataclass(frozen=True)
class Key:
    """What makes a dataclass field a YAML key: the metadata `setting()` gives it."""

    help: str
    #: A YAML number is refused rather than turned into the string, for values a number
    #: would change (`key: 0123` reads as 83), so the user is told to quote it.
    quoted: bool


def setting(default: Any = dataclasses.MISSING, help: str = "", *, quoted: bool = False) -> Any:
    """A field that is one YAML key: its default (none: the key is required), the help line
    `nbflask config init` writes next to it, and whether it must be a quoted string.
    A list or dict default is copied for each settings object."""
    metadata = {"key": Key(help, quoted)}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.copy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def yaml_keys(cls: type) -> dict[str, dataclasses.Field]:
    """The YAML keys of a section's dataclass and their fields: those made by `setting()`
    (`class_name` is the key `class`)."""
    fields = [f for f in dataclasses.fields(cls) if "key" in f.metadata]
    return {"class" if f.name == "class_name" else f.name: f for f in fields}


@dataclass(frozen=True)
class ServerSettings:
    ip: str = setting("127.0.0.1", "interface to listen on; '*' = every interface (IPv4 and IPv6)")
    port: int = setting(8888, "port to listen on")
    port_retries: int = setting(50, "if the port is busy, try this many following ports")
    open_browser: bool = setting(True, "open a browser on the start page (ui.default_url) at start")
    base_url: str = setting("/", "URL prefix the whole server lives under, e.g. /ipython/")
    certfile: str | None = setting(
        None, "PEM certificate for https (may also hold the key, like the seed's mycert.pem)"
    )
    keyfile: str | None = setting(None, "PEM private key, when not inside certfile")
    trust_xheaders: bool = setting(False, "honour X-Forwarded-For/Proto/Host/Prefix from a proxy in front")
    websocket_compression: bool = setting(False, "offer permessage-deflate on websockets (costs CPU)")
    max_body_size: int = setting(100 * 1024 * 1024, "largest request body in bytes; larger ones get 413")
    websocket_send_buffer: int = setting(
        64 * 1024 * 1024, "bytes a slow websocket client may leave unread before it is closed"
    )
    handshake_timeout: int = setting(
        20, "seconds a client has to finish its TLS handshake, else it is disconnected"
    )
    header_timeout: int = setting(
        20,
        "seconds a client has to send a request's line and headers (a request's body"
        " has body_timeout, a websocket no limit), else it is disconnected",
    )
    keepalive_timeout: int = setting(30, "seconds an idle kept-alive connection waits for its next request")
    body_timeout: int = setting(
        20,
        "seconds a request's body may go without a byte arriving (an upload that makes"
        " progress is never cut), else the connection is closed",
    )


@dataclass(frozen=True)
class AuthSettings:
    token: str = setting("auto", "auto (random at each start) | a fixed token | '' (only with a password)")
    password: str | None = setting(None, "hash from `nbflask passwd` (argon2:...) or a legacy sha1:salt:hash")
    allow_origin: list[str] = setting([], "extra origins allowed for websockets and CORS")
    allow_remote_access: bool = setting(False, "accept any Host header (needed behind some proxies)")
    local_hostnames: list[str] = setting(
        ["localhost"], "host names accepted in the Host header while serving locally"
    )
    session_lifetime: int = setting(30 * 24 * 3600, "seconds a login cookie stays valid")
    login_max_failures: int = setting(
        5, "login attempts allowed per client within login_window before 429"
    )
    login_window: int = setting(
        60, "seconds over which login attempts are counted (and a client stays blocked)"
    )
    content_security_policy: str = setting(
        "frame-ancestors 'self'", "Content-Security-Policy header on every response"
    )


@dataclass(frozen=True)
class SwiftSettings:
    """The options of `store.class: swift`, keys of the `store` section (docs/stores.md).

    Built directly, the values are taken as they are; through `load_settings` they are checked
    and `auth_version` and `prefix` come out in their plain form ('1' or '3'; no slashes).
    """

    auth_url: str = setting(quoted=True)
    user: str = setting(quoted=True)
    key: str = setting(quoted=True)
    auth_version: str = setting("1")
    project_name: str | None = setting(None, quoted=True)
    user_domain_name: str = setting("Default", quoted=True)
    project_domain_name: str = setting("Default", quoted=True)
    region: str | None = setting(None, quoted=True)
    container: str = setting("notebooks", quoted=True)
    create_container: bool = setting(True)
    prefix: str = setting("", quoted=True)
    timeout: float = setting(10.0)
    retries: int = setting(1)


@dataclass(frozen=True)
class StoreSettings:
    """`class` picks the store; every other key is an option of that store: typed and checked
    with the rest for the built-in `swift` (`swift`), handed as they are to the constructor
    of any other class (`options`)."""

    class_name: str = setting("file", "file | memory | swift | package.module:Class")
    root_dir: str = setting(".", "folder the notebooks live in (file store)")
    allow_hidden: bool = setting(False, "show and serve files and folders whose name starts with '.'")
    max_checkpoints: int = setting(
        5, "with checkpoints: multiple, checkpoints kept per file; the oldest goes past it"
    )
    checkpoints: str = setting(
        "single", "single: one checkpoint per file, as in Jupyter; multiple: several per file"
    )
    options: dict[str, Any] = field(default_factory=dict)
    swift: SwiftSettings | None = None


@dataclass(frozen=True)
class KernelSettings:
    default: str = setting("python3", "kernelspec used when a client names none")
    cull_idle_timeout: int = setting(0, "shut down kernels idle this many seconds; 0 = never")
    cull_interval: int = setting(300, "seconds between checks for idle kernels")
    cull_connected: bool = setting(False, "also cull idle kernels that have a browser connected")
    cull_busy: bool = setting(False, "also cull kernels that are busy")
    autorestart: bool = setting(True, "restart a kernel that dies")
    restart_limit: int = setting(5, "automatic restarts in a row before a dying kernel is declared dead")
    startup_timeout: int = setting(
        60, "seconds a kernel may take to answer after it starts, else it is stopped"
    )
    ping_interval: int = setting(
        30, "seconds between websocket pings that keep idle kernel connections open"
    )
    replay_buffer_bytes: int | None = setting(  # None: server.websocket_send_buffer (see checks.py)
        None,
        "iopub bytes kept per kernel for clients that reconnect (newest kept);"
        " null: server.websocket_send_buffer; 0: no replay",
    )
    replay_buffer_age: int = setting(600, "seconds iopub messages are kept for clients that reconnect")
    recording_bytes: int = setting(
        64 * 1024 * 1024,
        "bytes of recent cell runs the kernel host keeps per kernel, all they cost"
        " counted (code, outputs, records; 0: none)",
    )
    recording_age: int = setting(86400, "seconds a finished cell run's outputs are kept by the kernel host")
    recording_stream_chars: int = setting(
        1_000_000, "characters kept per stream output (the newest, and a note of the cut)"
    )
    recording_save_interval: int = setting(
        10,
        "seconds between saves of a running cell's outputs into a notebook no"
        " page has open (at its end too; 0: never)",
    )
    transport: str = setting(
        "ipc", "ipc (unix sockets in the private runtime folder, no port open) | tcp (on loopback)"
    )
    host: str = setting(
        "own",
        "own: the server starts its kernel host and stops it (and the kernels) when it stops;"
        " service: use the one `nbflask kernel-host` runs, so kernels outlive web restarts",
    )


@dataclass(frozen=True)
class TerminalSettings:
    enabled: bool = setting(
        True, "serve Jupyter's terminals (/api/terminals, their websocket); false: no such routes"
    )
    shell_command: list[str] = setting(
        [], "command a terminal runs, e.g. [bash, -l]; [] = the user's login shell (-l)"
    )
    root_dir: str | None = setting(
        None, "folder terminals start in; null = store.root_dir (file store), else home"
    )
    env: dict[str, str] = setting({}, "extra environment variables for terminals, e.g. {EDITOR: nano}")
    cull_inactive_timeout: int = setting(
        0, "stop terminals without input or output this many seconds; 0 = never"
    )
    cull_interval: int = setting(300, "seconds between checks for inactive terminals")
    scrollback_bytes: int = setting(
        256 * 1024, "recent output kept per terminal for pages that (re)connect (newest kept)"
    )
    input_buffer_bytes: int = setting(
        1024 * 1024, "input held per terminal while its program is not reading (>= 65536)"
    )


@dataclass(frozen=True)
class UISettings:
    default_url: str = setting(
        "/tree", "page `/` opens, below base_url: /tree (Notebook 7) or /lab (JupyterLab)"
    )
    expose_app_in_browser: bool = setting(
        False, "pages expose their app as window.jupyterapp (UI test tools use it)"
    )


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
