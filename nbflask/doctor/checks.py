"""What the doctor checks, in the order a browser meets a deployment: the connection and its
certificate, the server under the URL's path, authentication, the prefix in the server's
own links, the cookies, and a kernel reached over a websocket.

Each check yields Results (`visit.py`): a pass or a fail with the fix an operator can apply.
A check whose failure leaves nothing for the later ones to look at is `blocking`. The kernel
check has a module of its own (`kernel.py`).
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from .client import Reply, Target
from .kernel import check_kernel
from .visit import SESSION_COOKIE, Result, Visit, fail, ok

RENEW_WITHIN_DAYS = 14
XSRF_COOKIE = "_xsrf"


def ours(cookie_name: str) -> bool:
    return cookie_name.startswith(SESSION_COOKIE) or cookie_name == XSRF_COOKIE
REWRITES = "check what rewrites cookies between the server and the browser"
CREDENTIALS_FIX = {
    "token": "give the token the server logged at start, or the one set in auth.token",
    "password": "give the password whose hash is in auth.password (set it anew with `nbflask passwd`)",
}
COOKIE_FIX = "check that the proxy passes Cookie and Set-Cookie unchanged"
PREFIX_FIX = ("the prefix is lost on the way: either forward the full path and set server.base_url to it,"
              " or have the proxy send X-Forwarded-Prefix and set server.trust_xheaders: true")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _speaks_plain_http(target: Target) -> bool:
    try:
        with socket.create_connection((target.host, target.port), timeout=5) as sock:
            sock.sendall(f"HEAD / HTTP/1.0\r\nHost: {target.netloc}\r\n\r\n".encode())
            return sock.recv(5) == b"HTTP/"
    except OSError:
        return False


def _speaks_tls(target: Target) -> bool:
    """Whether the port completes a TLS handshake (certificate unchecked: only the protocol)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((target.host, target.port), timeout=5) as sock:
            with context.wrap_socket(sock, server_hostname=target.host):
                return True
    except OSError:
        return False


def _certificate_summary(sock: ssl.SSLSocket) -> tuple[str, float]:
    cert = sock.getpeercert() or {}
    names = ", ".join(f"{kind}:{value}" for kind, value in cert.get("subjectAltName", ()))
    expires = ssl.cert_time_to_seconds(cert["notAfter"]) if "notAfter" in cert else 0.0
    days = (expires - time.time()) / 86400
    until = datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%d")
    summary = f"{sock.version()}, certificate for {names or 'no names'}"
    summary += f", valid until {until} ({days:.0f} days)"
    return summary, days


def check_tls(visit: Visit) -> Iterator[Result]:
    target = visit.target
    where = f"{target.host}:{target.port}"
    try:
        sock = visit.client.connect()
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or str(exc)
        if "expired" in reason:
            fix = "renew the certificate (certbot renew, or a new one) and reload the server"
        elif "Hostname mismatch" in reason or "IP address mismatch" in reason:
            fix = f"issue the certificate for {target.host} (subjectAltName), or browse by a name it holds"
        else:
            fix = ("use a certificate from a CA browsers trust (e.g. Let's Encrypt), or pass --cafile"
                   " with the CA (or self-signed certificate) your users install")
        yield fail("tls", f"the certificate of {where} is not trusted: {reason}", fix, blocking=True)
        return
    except ssl.SSLError as exc:
        if _speaks_plain_http(target):
            yield fail("tls", f"{where} answers in plain HTTP, not TLS",
                       "turn TLS on for this port (nginx `listen ... ssl`, gunicorn --certfile/--keyfile,"
                       " or server.certfile), or use the http:// URL if TLS ends elsewhere", blocking=True)
        else:
            yield fail("tls", f"TLS with {where} failed: {exc.reason or exc}",
                       "check the certificate and key the server loads (its log says why)", blocking=True)
        return
    except OSError as exc:
        yield fail("tls", f"cannot connect to {where}: {exc.strerror or exc}",
                   "start the server, and check it listens on that address and the firewall lets it",
                   blocking=True)
        return
    with sock:
        if not target.secure:
            if not _speaks_plain_http(target) and _speaks_tls(target):
                yield fail("tls", f"{where} speaks TLS, not plain HTTP", f"use https://{target.netloc}{target.path}",
                           blocking=True)
            elif _is_loopback(target.host):
                yield ok("tls", "plain HTTP on loopback: nothing crosses the network")
            else:
                yield fail("tls", "plain HTTP: tokens, passwords and cookies cross the network readable",
                           "serve https (nginx with a certificate, or server.certfile), use https://")
            return
        summary, days = _certificate_summary(sock)
    if days < RENEW_WITHIN_DAYS:
        yield fail("tls", summary, f"renew the certificate: it expires within {RENEW_WITHIN_DAYS} days")
    else:
        yield ok("tls", summary)


def _jupyter_api(reply: Reply) -> str | None:
    data = reply.json()
    if reply.status == 200 and isinstance(data, dict) and isinstance(data.get("version"), str):
        return data["version"]
    return None


def _find_prefix(visit: Visit) -> str | None:
    """Where on this origin a Jupyter API answers, following `/`'s redirects (nbflask sends
    `/` outside its prefix to the prefix)."""
    path = "/"
    for _ in range(4):
        candidate = path if path.endswith("/") else path.rsplit("/", 1)[0] + "/"
        if _jupyter_api(visit.get(candidate + "api")):
            return candidate
        reply = visit.get(path)
        location = urlsplit(reply.header("Location"))
        if reply.status not in (301, 302, 303, 307, 308) or not location.path.startswith("/"):
            return None
        path = location.path
    return None


def check_server(visit: Visit) -> Iterator[Result]:
    target = visit.target
    reply = visit.get(target.path + "api")
    version = _jupyter_api(reply)
    if version:
        yield ok("server", f"a Jupyter API (version {version}) answers at {target.url('api')}")
        return
    found = _find_prefix(visit)
    if found and found != target.path:
        yield fail("server", f"nothing at {target.path}api (HTTP {reply.status}); the server is at {found}",
                   f"browse to {target.origin}{found}, or make server.base_url and the proxy's location"
                   f" agree on {target.path}", blocking=True)
    elif reply.status in (502, 503, 504):
        yield fail("server", f"the proxy answered HTTP {reply.status}: it cannot reach the server",
                   "start the server; make the proxy's upstream (proxy_pass) match gunicorn's -b",
                   blocking=True)
    else:
        yield fail("server", f"no Jupyter API at {target.url('api')} (HTTP {reply.status})",
                   "check the URL's path against server.base_url and the proxy's location", blocking=True)


def check_auth(visit: Visit) -> Iterator[Result]:
    anonymous = visit.get(visit.target.path + "api/status")
    if anonymous.status == 200:
        yield fail("auth", "the API answers without credentials: anyone reaching this URL runs code",
                   "set auth.password (`nbflask passwd --config FILE`) or keep auth.token")
        return
    if anonymous.status != 403:
        yield fail("auth", f"api/status without credentials answered HTTP {anonymous.status}, not 403",
                   "check that the proxy forwards the API unchanged")
        return
    if not visit.credentials:
        yield ok("auth", "credentials are required (give --token or --password to log in and check kernels)")
        return
    problem = visit.login()
    if problem:
        yield fail("auth", f"credentials are required, but {problem}", CREDENTIALS_FIX[visit.credentials])
        return
    status = visit.api("GET", "api/status").status
    if status != 200:
        yield fail("auth", f"logged in, but api/status then answered HTTP {status}", COOKIE_FIX)
        return
    yield ok("auth", f"credentials are required, and the {visit.credentials} logs in")


def _page_base_url(html: str) -> str | None:
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
    try:
        return json.loads(found.group(1)).get("baseUrl") if found else None
    except ValueError:
        return None


def check_base_url(visit: Visit) -> Iterator[Result]:
    target = visit.target
    redirect = visit.note_cookies(visit.get(target.path + "tree"))  # anonymous: the login stays
    location = urlsplit(redirect.header("Location"))
    if redirect.status in (301, 302, 303, 307, 308):
        if location.netloc and f"{location.scheme}://{location.netloc}" != target.origin:
            elsewhere = f"{location.scheme}://{location.netloc}"
            yield fail("base_url", f"redirects go to {elsewhere}, not {target.origin}",
                       "the proxy must pass the browser's Host (proxy_set_header Host $http_host) and"
                       " X-Forwarded-Proto, with server.trust_xheaders: true")
            return
        if not location.path.startswith(target.path):
            yield fail("base_url", f"redirects go to {location.path}, outside {target.path}", PREFIX_FIX)
            return
    if not visit.logged_in:
        yield ok("base_url", f"redirects stay under {target.path} (log in to check a page)")
        return
    page = visit.get(target.path + "tree", cookies=True)
    base_url = _page_base_url(page.body.decode("utf-8", "replace"))
    if base_url != target.path:
        yield fail("base_url", f"the page's baseUrl is {base_url!r} (HTTP {page.status}), not {target.path}",
                   PREFIX_FIX)
        return
    scripts = re.findall(r'<script defer src="([^"]+)"', page.body.decode("utf-8", "replace"))
    broken = [src for src in scripts if visit.get(src).status != 200]
    if broken or not scripts:
        yield fail("base_url", f"the page's scripts do not load: {', '.join(broken) or 'none named'}",
                   "forward the static files (under the prefix) to nbflask too")
        return
    yield ok("base_url", f"redirects, the page config and its scripts are under {target.path}")


def _cookie_problems(visit: Visit) -> Iterator[tuple[str, str]]:
    target = visit.target
    for line in visit.set_cookies:
        try:
            parsed = SimpleCookie(line)
        except CookieError:
            yield f"unreadable Set-Cookie {line!r}", REWRITES
            continue
        for name, morsel in parsed.items():
            if not ours(name):
                continue
            if morsel["path"] != target.path:
                yield f"{name} has Path={morsel['path'] or '(none)'}, not {target.path}", PREFIX_FIX
            if target.secure and not morsel["secure"]:
                yield (f"{name} is not Secure although the browser uses https",
                       "TLS ends at the proxy: send X-Forwarded-Proto, set server.trust_xheaders: true")
            if name.startswith(SESSION_COOKIE) and not morsel["httponly"]:
                yield f"{name} is not HttpOnly", REWRITES


def check_cookies(visit: Visit) -> Iterator[Result]:
    seen = sorted({name for line in visit.set_cookies if ours(name := line.partition("=")[0])})
    problems = list(_cookie_problems(visit))
    if problems:
        detail, fix = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        yield fail("cookies", detail + more, fix)
    elif not seen:
        yield fail("cookies", "the server set no cookie", "check that the proxy passes Set-Cookie")
    else:
        flags = "Secure, " if visit.target.secure else ""
        yield ok("cookies", f"{', '.join(seen)}: Path={visit.target.path}, {flags}session HttpOnly")


CHECKS: tuple[Callable[[Visit], Iterator[Result]], ...] = (
    check_tls, check_server, check_auth, check_base_url, check_cookies, check_kernel,
)
