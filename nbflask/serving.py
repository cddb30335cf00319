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
from io import BytesIO

import gevent

from . import connections, http_rules
from .config import ConfigError, ServerSettings, Settings

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


def _server_class():
    """gevent's WSGI server, hardened and tuned for our traffic.

    - TCP_NODELAY on every connection: without it a keep-alive client waits on Nagle plus
      delayed ACK, about 44 ms per request instead of 2 ms (measured with a requests.Session
      against /api/status).
    - Time limits (`server.*_timeout`): a TLS handshake, a request's line and headers, and
      the wait for the next request on a kept-alive connection are bounded; a client past
      one is disconnected without an answer, as gunicorn does. Of a request being answered
      only its body's silences are (`server.body_timeout`): a websocket, an upload however
      slow, have all the time they need.
    - A request line or header the rules of http_rules.py refuse, and ambiguous body
      framing, get a JSON 400 and the connection is closed: gevent's own parser would drop
      the headers after a bad line and read the body as the next request.
    - A request line other than `METHOD target HTTP/1.x` is 400 (gevent took tabs and runs of
      spaces, control bytes in the target and HTTP/0.9), one empty line before it is skipped
      (RFC 9112 2.2), and a head over MAX_HEAD bytes is 431: its lines are held in memory.
    - The body is a gevent_body.BodyInput: chunk lines checked, each wait for its bytes bounded
      by `server.body_timeout`, and what the application leaves unread never read: the
      connection is closed after the response instead (with `Connection: close` when the
      application had not read it by the time it answered), as after a body that cannot be
      parsed (gevent would read on from the middle of it, as if it were the next request).
    - A connection upgraded to a websocket is closed once that websocket ends: the websocket
      owned the stream, so whatever the client sends after it is not HTTP.
    """
    from gevent.pywsgi import MAX_REQUEST_LINE, WSGIHandler, WSGIServer

    from .gevent_body import BodyInput

    class StrictHandler(WSGIHandler):
        # The timer running while the server waits for a request's line and headers.
        _deadline: gevent.Timeout | None = None
        _requests_read = 0

        def handle_one_request(self):  # noqa: ANN202 - gevent's hook
            try:
                result = super().handle_one_request()
            except gevent.Timeout as timeout:
                if timeout is not self._deadline:
                    raise
                return None  # the connection closes without an answer
            finally:
                self._stop_deadline()
            if isinstance(result, tuple) and result[0] == "414":  # gevent's own, in plain text
                message = f"Bad request: a request line of {MAX_REQUEST_LINE} bytes or more"
                return "414", http_rules.refusal(414, "Request-URI Too Long", message)
            body = getattr(self, "wsgi_input", None)
            if result is None and isinstance(body, BodyInput) and not body.complete and self.socket:
                self._linger()
            return result

        def _linger(self) -> None:
            """After the last answer on a connection whose body was left unread: end our side
            (FIN), then drop what the client still sends for up to LINGER seconds. Closing on
            unread bytes makes the kernel reset the connection, and a reset can destroy the
            answer in the client's buffers before the client reads it (an upload's 413)."""
            try:
                self.socket.shutdown(socket.SHUT_WR)
                with gevent.Timeout(LINGER, False):
                    while self.socket.recv(65536):
                        pass
            except OSError:
                pass

        def read_requestline(self) -> str:
            limits = self.server.limits
            if self._requests_read:
                # Kept alive: the next request has keepalive_timeout to begin ...
                self._start_deadline(limits.keepalive_timeout)
                if not self.rfile.peek(1):
                    return ""
            # ... then header_timeout (from the connection's start, for its first request)
            # to bring its line and headers.
            self._start_deadline(limits.header_timeout)
            line = super().read_requestline()
            return super().read_requestline() if line == "\r\n" else line

        def read_request(self, raw_requestline: str) -> bool:
            self._requests_read += 1
            try:
                problem = http_rules.request_line_problem(raw_requestline.encode("latin-1"))
                if problem:
                    raise ValueError(f"request line: {problem}")
                return super().read_request(raw_requestline)
            finally:
                self._stop_deadline()

        def MessageClass(self, fp, *args):  # noqa: ANN001, ANN202, N802 - gevent's hook
            lines = _header_lines(fp)
            headers = super().MessageClass(BytesIO(b"".join(lines) + b"\r\n"), *args)
            problem = http_rules.framing_problem(headers, self.request_version)
            if problem:
                raise ValueError(problem)
            return headers

        def _handle_client_error(self, ex: Exception) -> tuple[str, bytes]:
            super()._handle_client_error(ex)  # gevent logs it
            message = getattr(ex, "formatted_message", None) or str(ex) or type(ex).__name__
            if isinstance(ex, HeadTooLarge):
                return "431", http_rules.refusal(431, "Request Header Fields Too Large", message)
            return "400", http_rules.refusal(400, "Bad Request", f"Bad request: {message}")

        def get_environ(self) -> dict:
            environ = super().get_environ()
            gevents = self.wsgi_input
            self.wsgi_input = BodyInput(
                self.rfile, self.content_length, continue_socket=gevents.socket,
                chunked_input=gevents.chunked_input, connection=self.socket,
                idle_timeout=self.server.limits.body_timeout)
            if environ["wsgi.input"] is gevents:  # not an upgrade, which reads the socket itself
                environ["wsgi.input"] = self.wsgi_input
            return environ

        def start_response(self, status: str, headers: list, exc_info=None):  # noqa: ANN001, ANN201
            if not self.wsgi_input.complete:
                # The rest of the body is never read: tell the client this answer is the last.
                self.close_connection = True
                if not any(name.lower() == "connection" for name, _ in headers):
                    headers = [*headers, ("Connection", "close")]
            return super().start_response(status, headers, exc_info)

        def handle_one_response(self) -> None:
            try:
                super().handle_one_response()
            finally:
                # The websocket wrote its own 101 on the socket (no start_response): the stream
                # was its own. A refused upgrade (a 403 through start_response) stays HTTP.
                upgraded = self.status is None or self.code == 101
                if upgraded and self.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
                    self.close_connection = True
                # A body not read to its end (unread, cut off, unparsable) is never read on.
                if not self.wsgi_input.complete:
                    self.close_connection = True

        def _start_deadline(self, seconds: float) -> None:
            self._stop_deadline()
            self._deadline = gevent.Timeout(seconds)
            self._deadline.start()

        def _stop_deadline(self) -> None:
            # Kept after it stops: handle_one_request tells by it that a Timeout is its own.
            if self._deadline is not None:
                self._deadline.close()

    class NoDelayWSGIServer(WSGIServer):
        handler_class = StrictHandler
        limits: ServerSettings = ServerSettings()

        def handle(self, sock, address):  # noqa: ANN001 - gevent's signature
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().handle(sock, address)

        def wrap_socket_and_handle(self, client_socket, address):  # noqa: ANN001, ANN201 - gevent's
            return connections.handle_tls_within(self, client_socket, address, self.limits.handshake_timeout)

    return NoDelayWSGIServer


# http.client, which gevent parses headers with, refuses more than 100 lines counting the
# blank one that ends them: 99 header lines is its limit, and ours, so ours answers first.
MAX_HEADER_LINES = 99
LINGER = 2  # seconds a connection closed on an unread body keeps reading and dropping it
MAX_HEAD = 64 * 1024  # bytes of header lines one request may have the server hold


class HeadTooLarge(ValueError):
    """A request's headers are more than the server holds for one request (431)."""


def _header_lines(fp) -> list[bytes]:  # noqa: ANN001 - a binary file
    """A request's header lines up to the blank line that ends them, each checked by
    http_rules before a lenient parser sees it; ValueError (a 400) for the first bad one,
    HeadTooLarge past MAX_HEAD bytes in all (100 lines of 64 KiB each held 5.6 MB)."""
    lines: list[bytes] = []
    room = MAX_HEAD
    while True:
        line = fp.readline(room + 1)
        if line == b"\r\n":
            return lines
        if len(line) > room:
            raise HeadTooLarge(f"Request header fields too large: more than {MAX_HEAD} bytes of headers")
        room -= len(line)
        if len(lines) == MAX_HEADER_LINES:
            raise ValueError(f"more than {MAX_HEADER_LINES} header lines")
        if not line:
            raise ValueError("the connection ended inside the headers")
        problem = http_rules.header_line_problem(line)
        if problem:
            raise ValueError(problem)
        lines.append(line)


def serve(app, settings: Settings, say: Callable[[str], None] = print) -> None:
    """Run until SIGINT or SIGTERM, then stop cleanly: info file removed, parts closed."""
    from . import __version__, runtime

    state = app.extensions["nbflask"]
    context = tls_context(settings)
    listener = bind(settings.server.ip, settings.server.port, settings.server.port_retries, say)
    port = listener.getsockname()[1]
    tls = {"ssl_context": context} if context else {}
    server = _server_class()(listener, app, log=None, error_log=logging.getLogger("nbflask.server"), **tls)
    server.limits = settings.server
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
