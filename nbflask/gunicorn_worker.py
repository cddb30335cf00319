"""What gunicorn's gevent workers need of nbflask: to retire cleanly (recycled, reloaded,
stopped), to bound TLS handshakes and request bodies, and to answer what they cannot parse
with a JSON 400.

It serves what it had accepted: a gevent worker that is recycled (`max_requests`) or
reloaded (SIGHUP) calls `close()` on its gevent server, which closes the listening socket and
drops the server's handler at once. But connections it accepted a moment earlier are handled
by greenlets that have not run yet: with TLS the handshake then finds no handler
(`AttributeError: 'StreamServer' object has no attribute 'handle'`, gevent issue 2071,
gunicorn issue 3315), and gunicorn's handler itself
asks the closed listener for its name (`OSError: [Errno 9] Bad file descriptor`). Either
way the client sees its connection closed without a response: some requests of every
recycling were lost. In a worker, closing only needs to stop accepting; the listening socket
is the master's and the worker's copy goes when it exits.

And it closes its kernel websockets at once: they would otherwise stay open, and keep the
worker, until gunicorn's graceful timeout (30 s by default) and then be cut. Their clients
reconnect to another worker (or the restarted server) and replay what they missed. So too its
idle kept-alive connections, as nginx does on a graceful stop: gunicorn counted each as
busy until its keep-alive timeout ended it, so any client holding one (every browser does)
held a stopping or recycled worker for that long (20 s by default).
"""

from __future__ import annotations

import select
import signal
import socket
from collections.abc import Callable
from typing import Any

from .config import ServerSettings

RETIREMENT_CHECK = 0.25  # seconds between looks at whether the worker is retiring
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}


def hold_stop_signals() -> None:
    """In a new worker (gunicorn's post_fork), hold back the signals that stop it until it
    handles them itself (`release_stop_signals`).

    gunicorn's worker installs its signal handlers some way into booting, after gevent's
    monkey-patching; until then it has the master's, which only queue a signal for the
    master's loop. A stop the master passed on meanwhile (gunicorn stopped just after it
    replaced a recycled or crashed worker) was lost there: the new worker served on until
    gunicorn's graceful timeout (30 s) ended in SIGKILL. Held, it is delivered on release."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def release_stop_signals() -> None:
    """Deliver the stop signals held since the fork, now to the worker's own handlers."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def serve_accepted_connections_after_close() -> None:
    """Make `close()` of gevent's StreamServer, in this process, only stop accepting."""
    from gevent.server import StreamServer

    def close(self: Any) -> None:
        self._stop_event.set()
        self.stop_accepting()

    StreamServer.close = close


def _on_retirement(worker: Any, action: Callable[[], None]) -> None:
    """Start a greenlet that runs `action` once the worker stops being `alive` (gunicorn's
    flag for a worker past max_requests, or told to stop or reload)."""
    import gevent

    def watch() -> None:
        while worker.alive:
            gevent.sleep(RETIREMENT_CHECK)
        action()

    gevent.spawn(watch)


def close_websockets_on_retirement(worker: Any) -> None:
    """Close the worker's websockets once it retires: their clients reconnect elsewhere."""
    from . import websocket

    def close() -> None:
        closed = websocket.close_all("server restarting; reconnect")
        if closed:
            worker.log.info("nbflask: worker %d closed its %d websockets; their clients reconnect",
                            worker.pid, closed)

    _on_retirement(worker, close)


def close_idle_connections_on_retirement(worker: Any) -> None:
    """Close, once the worker retires, each kept-alive connection that waits for its next
    request with none of it arrived. A request under way is answered (gunicorn closes its
    connection after it), and so is one whose bytes wait to be read; a new connection keeps
    its first request, which its client is about to send. What a client sends on a kept-alive
    connection as it closes is the race every keep-alive close has, which HTTP clients retry."""
    idle: set[Any] = set()  # sockets of kept-alive connections between two requests
    handle, handle_request = worker.handle, worker.handle_request

    def tracked_handle(listener: Any, client: Any, addr: Any) -> Any:
        try:
            return handle(listener, client, addr)
        finally:
            idle.discard(client)

    def tracked_handle_request(listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        idle.discard(sock)
        try:
            return handle_request(listener_name, req, sock, addr)
        finally:
            idle.add(sock)  # until its next request, or tracked_handle's end

    def close() -> None:
        waiting = [sock for sock in idle if sock.fileno() >= 0]
        readable = set(select.select(waiting, [], [], 0)[0]) if waiting else set()
        for sock in waiting:
            if sock not in readable:
                _end_connection(sock)

    worker.handle, worker.handle_request = tracked_handle, tracked_handle_request
    _on_retirement(worker, close)


def _end_connection(sock: Any) -> None:
    """Shut the connection down under the greenlet reading it, which then sees the end of its
    stream, as when the client closes. Through a duplicate: shutting gevent's socket itself
    would fail that read with EBADF (and an SSL socket's, with a ValueError), both logged as
    errors."""
    try:
        with socket.fromfd(sock.fileno(), sock.family, sock.type) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone


def bound_tls_handshakes(settings: ServerSettings) -> None:
    """Give every TLS handshake in this worker `handshake_timeout` seconds, as `nbflask run`
    does: gunicorn bounds the wait for a request (its `keepalive`), not the handshake before."""
    from gevent.server import StreamServer

    from . import connections

    def wrap_socket_and_handle(self: Any, client_socket: Any, address: Any) -> Any:
        return connections.handle_tls_within(self, client_socket, address, settings.handshake_timeout)

    StreamServer.wrap_socket_and_handle = wrap_socket_and_handle


def answer_parse_errors_in_json() -> None:
    """gunicorn's own answers (a malformed request head: 400, 414, 431...) carry Jupyter's
    `{"message", "reason"}` JSON, as `nbflask run`'s do, instead of gunicorn's HTML page."""
    from gunicorn import util

    from . import http_rules

    def write_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
        util.write_nonblock(sock, http_rules.refusal(status_int, reason, mesg))

    util.write_error = write_error


def read_bodies_strictly(worker: Any, settings: ServerSettings) -> None:
    """A request body is read only by the application, within `body_timeout` per wait, and
    one it cannot parse (a bad chunk size, a chunk without its CRLF) is the client's error:
    400 and the connection closed, as under `nbflask run`.

    gunicorn raises its parse errors from the body's read() in the middle of the view, where
    they are a 500 with a traceback. Read through `_ClientBody` they are OSErrors, which
    Werkzeug answers as a 400 (ClientDisconnected). gunicorn itself reads what the
    application left unread before the next request, as long as it comes: through our
    wrapper a bad chunk there was an OSError that gunicorn logged with two tracebacks, per
    request, without login. Here the body the application did not finish is not read on
    at all: the connection ends after the answer (StopIteration is gunicorn's signal), as
    after a body that broke, since where the next request would start is unknown.
    """
    from gunicorn.http.errors import ParseException

    handle_request = worker.handle_request

    def strict_handle_request(listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        if req.body is None:
            return handle_request(listener_name, req, sock, addr)
        body = req.body = _ClientBody(req.body, ParseException, sock, settings.body_timeout)
        try:
            handled = handle_request(listener_name, req, sock, addr)
        finally:
            req.body = body.body  # gunicorn's own again, for its own bookkeeping
        if body.broken or not _read_to_the_end(body.body):
            raise StopIteration("request body not read to its end")
        return handled

    worker.handle_request = strict_handle_request


def _read_to_the_end(body: Any) -> bool:
    """Whether gunicorn's request body was read to its end, by what its reader has left;
    a reader of another kind is taken as unfinished (the connection then just closes)."""
    from gunicorn.http.body import ChunkedReader, LengthReader

    if body.buf.tell():
        return False
    reader = body.reader
    if isinstance(reader, LengthReader):
        return reader.length == 0
    if isinstance(reader, ChunkedReader):
        return reader.parser is None and not reader.buf.tell()
    return False


class _ClientBody:
    """gunicorn's request body (wsgi.input), whose parse errors read as OSError and whose
    every wait for bytes has `idle_timeout` seconds."""

    def __init__(self, body: Any, errors: type[Exception], sock: Any, idle_timeout: float) -> None:
        self.body = body
        self._errors = errors
        self._sock = sock
        self._idle_timeout = idle_timeout
        self.broken = False

    def _read(self, method: Any, size: int | None) -> Any:
        waited = self._sock.gettimeout()
        self._sock.settimeout(self._idle_timeout)
        try:
            return method(size)
        except TimeoutError as exc:
            self.broken = True
            raise OSError(f"no byte of the request body for {self._idle_timeout} s") from exc
        except self._errors as exc:
            self.broken = True
            raise OSError(f"unparsable request body: {exc}") from exc
        finally:
            self._sock.settimeout(waited)

    def read(self, size: int | None = None) -> bytes:
        return self._read(self.body.read, size)

    def readline(self, size: int | None = None) -> bytes:
        return self._read(self.body.readline, size)

    def readlines(self, size: int | None = None) -> list[bytes]:
        return self._read(self.body.readlines, size)

    def __iter__(self) -> _ClientBody:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line
