"""The decisions behind the auth gate, free of Flask: which Host, Origin and `next=` to accept,
which key signs the session cookie, which Content-Security-Policy a response gets, and how
many wrong passwords a client may try.

`blueprints/auth.py` applies them to requests; keeping them here lets tests and readers see
each rule on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from .config import Settings

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FILES_SANDBOX = "sandbox"
_EVERY_INTERFACE = ("*", "", "0.0.0.0", "::")


def session_key(secret: bytes, settings: Settings) -> bytes:
    """The key that signs session cookies: the runtime secret bound to the credentials.

    Changing the password (or a fixed token) changes the key, so every cookie issued under
    the old credentials stops working, in every worker, with no state to clear.
    """
    auth = settings.auth
    bound = "\0".join(("nbflask-session-v1", auth.password or "", auth.token))
    return hmac.new(secret, bound.encode("utf-8"), hashlib.sha256).digest()


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name.lower() == "localhost"


def remote_access_allowed(settings: Settings) -> bool:
    """Jupyter's rule: remote access is implied unless the server listens on loopback only."""
    ip = settings.server.ip
    if settings.auth.allow_remote_access or ip in _EVERY_INTERFACE:
        return True
    return not _is_loopback(ip.strip("[]"))


def hostname(host: str) -> str:
    """The name part of a Host header: `[::1]:8888` -> `::1`, `Example:80` -> `example`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host


def host_allowed(host: str, settings: Settings) -> bool:
    """Refuse DNS rebinding: while serving locally the Host must name this machine.

    A page on evil.example whose name has been rebound to 127.0.0.1 reaches a local server
    with `Host: evil.example`; loopback addresses, the local host names and the configured ip
    (any port) are all a browser sends when the user meant this server.
    """
    if remote_access_allowed(settings):
        return True
    name = hostname(host)
    if not name:
        return False
    if _is_loopback(name):
        return True
    allowed = {n.lower() for n in settings.auth.local_hostnames} | {settings.server.ip.strip("[]").lower()}
    return name in allowed


def _normal_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def configured_origin(origin: str, allow_origin: Iterable[str]) -> str | None:
    """The Access-Control-Allow-Origin value for `origin`, or None if it is not configured."""
    allowed = [_normal_origin(o) for o in allow_origin]
    if "*" in allowed:
        return "*"
    if origin and _normal_origin(origin) in allowed:
        return origin
    return None


def origin_allowed(origin: str | None, host: str, allow_origin: Iterable[str]) -> bool:
    """A websocket may connect from its own origin, a configured one, or a non-browser client.

    Browsers always send Origin on websocket upgrades, and cookies ride along on cross-site
    upgrades too, so this check is what stops another site from driving the user's kernels.
    """
    if origin is None:
        return True
    if configured_origin(origin, allow_origin):
        return True
    parts = urlsplit(origin.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc.lower() == host.lower()


def safe_next(target: str | None, script_root: str, home: str) -> str:
    """Where to go after login: only a path on this server, else `home`.

    Refuses schemes (`https:`, `javascript:`), scheme-relative `//host`, backslashes that
    browsers read as slashes, control characters, and paths outside the server's prefix.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return home
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return home
    if target != script_root and not target.startswith(script_root + "/"):
        return home
    return target


def content_security_policy(path: str, policy: str, existing: str | None) -> str | None:
    """The CSP a response leaves with: `policy`, plus a sandbox on /files/.

    Files served raw from the notebook folder (an HTML file, an SVG) must not run script with
    the server's origin, or any file could act as the logged-in user. A view that sets its own
    policy keeps it, gaining only the configured frame-ancestors directive if it has none.
    """
    if existing:
        ancestors = [d.strip() for d in policy.split(";") if d.strip().startswith("frame-ancestors")]
        if "frame-ancestors" in existing or not ancestors:
            return existing
        return f"{existing}; {ancestors[0]}"
    if path.startswith("/files/"):
        return f"{policy}; {FILES_SANDBOX}" if policy else FILES_SANDBOX
    return policy or None


class LoginLimiter:
    """Counts failed logins per client; after `max_failures` within `window` seconds the
    client is refused for `window` seconds, then starts afresh.

    State lives in this process: under several gunicorn workers each counts on its own, so
    a client gets up to `max_failures` tries per worker per window.
    """

    def __init__(
        self, max_failures: int, window: float, clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        self._failures: dict[str, list[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds the client must wait before its next attempt; 0 if it may try now."""
        with self._lock:
            until = self._blocked_until.get(client)
            if until is None:
                return 0
            remaining = until - self.clock()
            if remaining <= 0:
                del self._blocked_until[client]
                return 0
            return max(1, math.ceil(remaining))

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if now - t < self.window]
            recent.append(now)
            if len(recent) >= self.max_failures:
                self._failures.pop(client, None)
                self._blocked_until[client] = now + self.window
            else:
                self._failures[client] = recent
            self._prune(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
            self._blocked_until.pop(client, None)

    def _prune(self, now: float) -> None:
        """Bound memory under a flood of addresses: forget expired entries, then the oldest."""
        if len(self._failures) + len(self._blocked_until) <= self.max_clients:
            return
        self._failures = {c: ts for c, ts in self._failures.items() if now - ts[-1] < self.window}
        self._blocked_until = {c: u for c, u in self._blocked_until.items() if u > now}
        while len(self._failures) > self.max_clients // 2:
            self._failures.pop(next(iter(self._failures)))
