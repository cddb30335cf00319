"""Serve an app with gevent's WSGI server: listening sockets, TLS, start-up and shutdown.

Only `nbflask run` uses this module, after gevent has monkey-patched the standard library.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import ssl
import sys
import threading
import webbrowser
from collections.abc import Callable

from .config import ConfigError, Settings

log = logging.getLogger(__name__)


def bind(ip: str, port: int, retries: int, say: Callable[[str], None]) -> socket.socket:
    """A listening socket on `ip`:`port`, moving to the next ports while they are busy.

    `ip: '*'` (or '') listens on every interface, IPv6 and IPv4 alike, on one dual-stack socket.
    """
    candidates = [port] if port == 0 else [port + n for n in range(retries + 1) if port + n <= 65535]
    last_error: OSError | None = None
    for candidate in candidates:
        try:
            return _listen(ip, candidate)
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise ConfigError(f"server.ip: cannot listen on {ip!r}: {exc.strerror}") from None
            say(f"The port {candidate} is already in use, trying another port.")
            last_error = exc
    raise ConfigError(
        f"server.port: ports {candidates[0]}-{candidates[-1]} are all in use"
        f" ({last_error.strerror if last_error else 'busy'}); pick another port or raise port_retries"
    )


def _listen(ip: str, port: int) -> socket.socket:
    if ip in ("*", "", "::") and socket.has_ipv6:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address: tuple = ("::", port)
    else:
        host = "0.0.0.0" if ip in ("*", "") else ip
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context; a combined PEM (key and certificate in one) needs no keyfile."""
    certfile, keyfile = settings.server.certfile, settings.server.keyfile
    if not certfile:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile or None)
    except (ssl.SSLError, OSError) as exc:
        where = settings.source or "config"
        raise ConfigError(
            f"{where}: server.certfile: cannot load certificate and key from '{certfile}'"
            f"{' and ' + repr(keyfile) if keyfile else ''}: {exc}"
        ) from None
    return context


def display_urls(settings: Settings, port: int, token: str | None) -> list[str]:
    """The URLs to print: the one to use locally, plus the host name when listening widely."""
    scheme = "https" if settings.secure else "http"
    ip = settings.server.ip
    hosts = [ip if ip not in ("*", "", "0.0.0.0", "::") else socket.gethostname()]
    if ip in ("*", "", "0.0.0.0", "::"):
        hosts.append("127.0.0.1")
    query = f"?token={token}" if token else ""
    urls = []
    for host in hosts:
        shown = f"[{host}]" if ":" in host else host
        urls.append(f"{scheme}://{shown}:{port}{settings.server.base_url}{query}")
    return urls


def framing_problem(headers) -> str | None:  # noqa: ANN001 - an email.message.Message
    """Why a request's body framing is ambiguous (a smuggling risk), or None if it is clear.

    A front proxy and this server must agree where each request ends. They may not when a
    request carries both Content-Length and Transfer-Encoding, several Content-Lengths, or a
    transfer coding other than a lone `chunked` (which gevent would read as no body at all,
    taking the body for the next request). Jupyter's server answers these with 400.
    """
    codings = [c.strip().lower() for v in headers.get_all("Transfer-Encoding") or [] for c in v.split(",")]
    lengths = headers.get_all("Content-Length") or []
    if codings and lengths:
        return "both Content-Length and Transfer-Encoding"
    if len(lengths) > 1:
        return "more than one Content-Length"
    if codings and codings != ["chunked"]:
        return f"unsupported Transfer-Encoding {', '.join(codings)!r}"
    return None


def _server_class():
    """gevent's WSGI server, hardened and tuned for our traffic.

    - TCP_NODELAY on every connection: without it a keep-alive client waits on Nagle plus
      delayed ACK, about 44 ms per request instead of 2 ms (measured with a requests.Session
      against /api/status).
    - Requests whose body framing is ambiguous get 400 and the connection is closed.
    - A connection upgraded to a websocket is closed once that websocket ends: the websocket
      owned the stream, so whatever the client sends after it is not HTTP.
    """
    from gevent.pywsgi import WSGIHandler, WSGIServer

    class StrictHandler(WSGIHandler):
        def MessageClass(self, *args):  # noqa: ANN001, ANN202, N802 - gevent's hook
            headers = super().MessageClass(*args)
            problem = framing_problem(headers)
            if problem:
                raise ValueError(f"refused request with {problem}")
            return headers

        def handle_one_response(self) -> None:
            try:
                super().handle_one_response()
            finally:
                # The websocket wrote its own 101 on the socket (no start_response): the stream
                # was its own. A refused upgrade (a 403 through start_response) stays HTTP.
                upgraded = self.status is None or self.code == 101
                if upgraded and self.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
                    self.close_connection = True

    class NoDelayWSGIServer(WSGIServer):
        handler_class = StrictHandler

        def handle(self, sock, address):  # noqa: ANN001 - gevent's signature
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().handle(sock, address)

    return NoDelayWSGIServer


def serve(app, settings: Settings, say: Callable[[str], None] = print) -> None:
    """Run until SIGINT or SIGTERM, then stop cleanly: info file removed, parts closed."""
    from . import __version__, runtime

    state = app.extensions["nbflask"]
    context = tls_context(settings)
    listener = bind(settings.server.ip, settings.server.port, settings.server.port_retries, say)
    port = listener.getsockname()[1]
    tls = {"ssl_context": context} if context else {}
    server = _server_class()(listener, app, log=None, error_log=logging.getLogger("nbflask.server"), **tls)
    server.start()
    token = state.token if state.token else None
    urls = display_urls(settings, port, token)
    info = {
        "pid": os.getpid(),
        "version": __version__,
        "ip": settings.server.ip,
        "port": port,
        "base_url": settings.server.base_url,
        "secure": settings.secure,
        "url": urls[0].split("?")[0],
        "token": state.token,
        "password": bool(settings.auth.password),
        "root_dir": state.store.describe(),
    }
    info_file = runtime.write_server_info(info)
    say(f"nbflask {__version__} is serving notebooks from {info['root_dir']}")
    say("Open the server in a browser at:")
    for url in urls:
        say(f"    {url}")
    say("Stop it with Ctrl-C, or `nbflask stop " + str(port) + "`.")

    stopping = threading.Event()

    def stop(*_: object) -> None:
        if not stopping.is_set():
            stopping.set()
            say("Shutting down.")
            server.stop(timeout=3)

    import gevent

    gevent.signal_handler(signal.SIGINT, stop)
    gevent.signal_handler(signal.SIGTERM, stop)
    if settings.server.open_browser:
        threading.Thread(target=webbrowser.open, args=(urls[-1],), daemon=True).start()
    try:
        server.serve_forever()
    finally:
        info_file.unlink(missing_ok=True)
        state.close()
        sys.stdout.flush()
