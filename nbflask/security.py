"""The decisions behind the auth gate, free of Flask: which Host, Origin and `next=` to accept,
which key signs the session cookie, which Content-Security-Policy a response gets, how URLs
are rebuilt for redirects, how many login attempts a client may make, and which files below
a folder the public routes may serve.

`blueprints/auth.py` applies them to requests; keeping them here lets tests and readers see
each rule on its own.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import ipaddress
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from .config import Settings

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FILES_SANDBOX = "sandbox"
_EVERY_INTERFACE = ("*", "", "0.0.0.0", "::")
CSP_REPORT_PATH = "api/security/csp-report"
# What may stay literal in a redirect's path or query: RFC 3986's sub-delims and ':@', plus '%'
# in a query, which arrives already encoded and must not be encoded twice.
_PATH_SAFE = "/!$&'()*+,;=:@"
_QUERY_SAFE = _PATH_SAFE + "?%"


def file_inside(root: Path, name: str) -> Path | None:
    """The regular file `name` ('/'-separated, relative) below folder `root`, resolved, or None.

    For what is served without login (kernelspec resources, front-end bundles, extensions'
    static files): only what the folder itself holds. Refused: hidden names anywhere in
    `name` (and so `..`), empty segments, backslashes and NULs, and anything that resolves,
    through a symlink, outside `root` or onto a hidden name in it: a link to a user's file
    must not make it public. `root` itself may be a link (`jupyter labextension develop`).
    """
    parts = name.split("/")
    if any(not part or part.startswith(".") or "\\" in part or "\0" in part for part in parts):
        return None
    try:
        real_root = root.resolve()
        path = real_root.joinpath(*parts).resolve()
        inside = path.relative_to(real_root).parts
    except (OSError, ValueError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return None
    if not inside or any(part.startswith(".") for part in inside) or not path.is_file():
        return None
    return path


SESSION_COOKIE_PREFIX = "nbflask-session-"
XSRF_ENTRIES = 8  # servers whose XSRF tokens one browser's `_xsrf` cookie holds at most


def cookie_scope(host: str, script_root: str) -> str:
    """What tells this server's cookies from those of other servers on one host name: its host
    and port as the browser sees them (browsers keep cookies per host name, not per port) and
    its prefix, anything but letters and digits as '-'. Jupyter names its login cookie the
    same way (`username-<host>-<port>`); the request's Host, not the configured port, because
    that is what the browser sees behind a proxy, under gunicorn or after a port retry."""
    return re.sub(r"[^A-Za-z0-9]", "-", host + script_root).strip("-")


def session_cookie_name(scope: str) -> str:
    return SESSION_COOKIE_PREFIX + scope


def xsrf_cookie_value(current: str | None, scope: str, token: str) -> str:
    """The `_xsrf` cookie holding this server's token beside the ones other servers on this
    host name put there (the front-ends read that one name, and a browser shares it between
    ports): `scope:token|scope:token`, this server's last, at most XSRF_ENTRIES."""
    others = [entry for entry in (current or "").split("|")
              if entry.count(":") == 1 and not entry.startswith(scope + ":")]
    return "|".join([*others[-(XSRF_ENTRIES - 1):], f"{scope}:{token}"])


def xsrf_echoed_token(echoed: str, scope: str) -> str:
    """This server's token in what a page echoed: the whole `_xsrf` cookie (see
    `xsrf_cookie_value`), or the bare token our own forms carry; '' if it holds none."""
    if ":" not in echoed:
        return echoed
    for entry in echoed.split("|"):
        name, _, token = entry.partition(":")
        if name == scope:
            return token
    return ""


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


def url_path(path: str) -> str:
    """A decoded request path as it must appear in a URL: `what?#.ipynb` -> `what%3F%23.ipynb`.

    Werkzeug hands views the decoded path; putting it back in a Location header unencoded
    would turn `?` into a query and `#` into a fragment, and send the browser elsewhere.
    """
    return quote(path, safe=_PATH_SAFE)


def url_query(query_string: bytes) -> str:
    """The raw query string, kept as the client encoded it (bytes outside ASCII encoded)."""
    return quote(query_string, safe=_QUERY_SAFE)


def without_trailing_slash(script_root: str, path: str, query_string: bytes) -> str | None:
    """Where a URL with a trailing slash redirects (as Jupyter's), or None if it has none.

    The target is always a path on this server under its prefix: leading slashes collapse to
    one, and a backslash is encoded, so `//example.com/` or `/\\example.com/` cannot become a
    redirect to another host. The query string is kept.
    """
    if path == "/" or not path.endswith("/"):
        return None
    target = script_root + url_path("/" + path.strip("/"))
    return f"{target}?{url_query(query_string)}" if query_string else target


def content_security_policy(
    path: str, policy: str, existing: str | None, script_root: str = ""
) -> str | None:
    """The CSP a response leaves with: Jupyter's, built on the configured `policy`.

    Every response reports violations to the CSP report endpoint; API responses also get
    `default-src 'none'`, since JSON never needs to load anything. Files served raw from the
    notebook folder (an HTML file, an SVG) get a sandbox: they must not run script with the
    server's origin, or any file could act as the logged-in user. A view that sets its own
    policy keeps it, gaining only the configured frame-ancestors directive if it has none.
    An empty `policy` turns all of this off but the sandbox.
    """
    if existing:
        ancestors = [d.strip() for d in policy.split(";") if d.strip().startswith("frame-ancestors")]
        if "frame-ancestors" in existing or not ancestors:
            return existing
        return f"{existing}; {ancestors[0]}"
    if path.startswith("/files/"):
        return f"{policy}; {FILES_SANDBOX}" if policy else FILES_SANDBOX
    if not policy:
        return None
    directives = [policy]
    if "report-uri" not in policy:
        directives.append(f"report-uri {script_root}/{CSP_REPORT_PATH}")
    if (path == "/api" or path.startswith("/api/")) and "default-src" not in policy:
        directives.append("default-src 'none'")
    return "; ".join(directives)


class LoginLimiter:
    """Counts login attempts per client, for every worker of a deployment at once.

    An attempt is counted before its password is checked, so parallel guesses cannot all slip
    in while the first are still being verified: past `max_attempts` within `window` seconds
    the client is refused for `window` seconds, then starts afresh; a success clears it.

    The counts live in one small JSON file in the private runtime folder, read and rewritten
    under an exclusive `flock`, so gunicorn's worker processes share them. The lock is held
    only for that read-modify-write, which never yields to another greenlet (plain file I/O);
    callers under gevent run it on the thread pool so a worker waiting for the lock of another
    never stalls its event loop. Wall-clock time, since the file outlives processes.
    """

    def __init__(
        self, path: Path, max_attempts: int, window: float, scope: str = "",
        clock: Callable[[], float] = time.time, max_clients: int = 10_000,
    ) -> None:
        self.path = path
        self.max_attempts = max_attempts
        self.window = window
        self.scope = scope
        self.clock = clock
        self.max_clients = max_clients

    def attempt(self, client: str) -> int:
        """Count an attempt; 0 if it may proceed, else the seconds the client must wait."""
        key = f"{self.scope}/{client}"

        def count(records: dict[str, Any]) -> int:
            now = self.clock()  # read under the lock, so the times in the file only grow
            record = records.get(key) or {}
            blocked = min(float(record.get("blocked_until", 0)) - now, self.window)
            if blocked > 0:
                return max(1, math.ceil(blocked))
            tries = [t for t in record.get("tries", []) if now - t < self.window] + [now]
            if len(tries) > self.max_attempts:
                records[key] = {"blocked_until": now + self.window, "last": now}
                return max(1, math.ceil(self.window))
            records[key] = {"tries": tries, "last": now}
            return 0

        return self._update(count)

    def succeeded(self, client: str) -> None:
        key = f"{self.scope}/{client}"
        self._update(lambda records: records.pop(key, None))

    def _update(self, change: Callable[[dict[str, Any]], Any]) -> Any:
        """Apply `change` to the records under the file's lock, and save them."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+b") as handle:  # closing it releases the lock
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                records = json.loads(handle.read() or b"{}")
            except ValueError:
                records = {}  # a write cut short by a crash: start afresh
            if not isinstance(records, dict):
                records = {}
            result = change(records)
            self._prune(records)
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(records, separators=(",", ":")).encode())
        return result

    def _prune(self, records: dict[str, Any]) -> None:
        """Bound the file under a flood of addresses: forget expired clients, then the oldest."""
        if len(records) <= self.max_clients:
            return
        now = self.clock()
        for key in [k for k, r in records.items() if r.get("last", 0) + self.window <= now]:
            del records[key]
        if len(records) > self.max_clients:
            oldest_first = sorted(records, key=lambda k: records[k].get("last", 0))
            for key in oldest_first[: len(records) - self.max_clients // 2]:
                del records[key]
