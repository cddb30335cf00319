"""Accepting a websocket from any of our servers, with the transport fixes listed below (each measured).

simple-websocket does the handshake, the reading, ping/pong and closing, with these changes:
everything is written by one writer per connection, from a queue bounded in bytes, with
`sendall` (simple-websocket 1.1.0 ignores partial writes, which corrupts big frames under
gevent on plain TCP); a client that reads too slowly is closed with SLOW_CLIENT instead of
making the server hold all that its kernel prints. TCP_NODELAY is set (no Nagle stall on each
round trip), permessage-deflate is only negotiated when the deployment enables it, and
uncompressed data frames are written here: a 2-10 byte header, then the message's pieces as
they are, where wsproto would copy a 1 MiB payload four times.

flask-sock is not used: it builds simple-websocket's own `Server` (no subclass, so none of the
above), and it accepts the upgrade before the view runs, so a missing kernel could not get its
404 (see docs/kernels.md).
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from flask import Response
from simple_websocket import ConnectionClosed, Server
from wsproto.events import BytesMessage, CloseConnection, TextMessage
from wsproto.frame_protocol import CloseReason

log = logging.getLogger(__name__)

COALESCE = 64 * 1024  # pieces smaller than this are joined into one write
TEXT, BINARY = 0x1, 0x2
SLOW_CLIENT = 4008  # close code for a client whose unsent messages passed the send buffer
SLOW_CLIENT_REASON = "client too slow: send buffer full; reconnect to catch up"
CLOSE_TIMEOUT = 30.0  # seconds the last frames (the close among them) may take to go out
GOING_AWAY = 1001  # close code when the server (this worker) stops: reconnect elsewhere

_open: weakref.WeakSet[Websocket] = weakref.WeakSet()  # this process's open websockets
_going_away: list[str] = []  # the reason, once close_all was called: later ones close at once


def frame_header(opcode: int, length: int) -> bytes:
    """RFC 6455 header of a final, unmasked (server-to-client) frame."""
    if length < 126:
        return struct.pack("!BB", 0x80 | opcode, length)
    if length < 1 << 16:
        return struct.pack("!BBH", 0x80 | opcode, 126, length)
    return struct.pack("!BBQ", 0x80 | opcode, 127, length)


class SendAllSocket:
    """The connection's socket, written whole and in order without making callers wait.

    `send` (simple-websocket's handshake, pings, pongs and closes) always takes its bytes;
    `offer` takes one data message unless the bytes not yet written already reach `limit`, so a
    client that reads too slowly costs at most that much memory. A message bigger than `limit`
    still goes when nothing else waits. While nothing waits, the caller writes what the socket
    takes at once (as cheap as a plain send); the rest, and everything behind it, is written by
    the connection's writer thread (a greenlet once gevent has patched `threading`) with
    `sendall`: simple-websocket 1.1.0 ignores partial writes.
    """

    def __init__(self, sock: Any, limit: int) -> None:
        self._sock = sock
        self.limit = limit
        self.queued = 0  # bytes taken and not yet written, those being written included
        self.taken = 0  # bytes ever taken; a message taken when this was N ends at offset N
        self.written = 0  # bytes ever written to the socket: messages ending there are out
        self.cut: int | None = None  # messages ending past this offset were discarded
        self.error: OSError | None = None
        self._send_now = immediate_sender(sock)
        self._rest: list[bytes] | None = None  # the unwritten end of a message already begun
        self._queue: deque[tuple[int, list[bytes]]] = deque()
        self._writing = False  # by the writer, or by a caller writing at once
        self._stopping = False
        self._drain_until: float | None = None  # the latest end any drain has granted
        lock = threading.Lock()
        self._work = threading.Condition(lock)
        self._idle = threading.Condition(lock)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass  # not TCP (a unix socket behind a proxy): nothing to tune
        self._writer = threading.Thread(target=self._write_queue, daemon=True, name="websocket-writer")
        self._writer.start()

    def send(self, data: bytes) -> int:
        self._put([data], bounded=False)
        return len(data)

    def offer(self, pieces: list[bytes]) -> bool:
        """Take one message; False, and nothing taken, if it does not fit in the limit."""
        if not self._put(pieces, bounded=True):
            return False
        if self.queued:  # a backlog: let the writer run (under gevent this yields to it)
            time.sleep(0)
        return True

    def _put(self, pieces: list[bytes], bounded: bool) -> bool:
        size = sum(len(piece) for piece in pieces)
        with self._work:
            if self.error is not None or self._stopping:
                raise BrokenPipeError(f"websocket writer stopped: {self.error or 'closing'}")
            if bounded and self.queued and self.queued + size > self.limit:
                return False
            self.queued += size
            self.taken += size
            if self._writing or self._rest is not None or self._queue or self._send_now is None:
                self._queue.append((size, pieces))
                self._work.notify()
                return True
            self._writing = True
        self._write(size, pieces, at_once=True)
        return True

    def discard(self) -> int:
        """Drop the messages not yet begun; the bytes dropped."""
        with self._work:
            dropped = sum(size for size, _ in self._queue)
            self._queue.clear()
            self.queued -= dropped
            if dropped:
                kept = self.taken - dropped
                self.cut = kept if self.cut is None else min(self.cut, kept)
        return dropped

    def is_out(self, end: int) -> bool:
        """Whether the message taken when `taken` became `end` has been written whole (the bytes
        of a close written after a discard do not count for the messages discarded)."""
        return end <= self.written and (self.cut is None or end <= self.cut)

    def drain(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Take no more, let the writer finish what it has and end; True if it did in time.
        Past `timeout` the connection is shut down (which wakes a writer stuck on it). A drain
        never cuts short the time an earlier one granted: a close drains in the background
        for CLOSE_TIMEOUT while the relay ending beside it waits only LAST_WRITES."""
        with self._work:
            self._stopping = True
            self._work.notify()
            started = time.monotonic()
            until = started + timeout
            if self._drain_until is not None:
                until = max(until, self._drain_until)
            self._drain_until = until
            done = self._idle.wait_for(lambda: not self.queued, max(until - time.monotonic(), 0.0))
        if not done:
            log.warning("websocket: %d bytes still unsent after %.3g s; dropping the connection",
                        self.queued, time.monotonic() - started)
            self.shutdown()
        return done

    def shutdown(self, how: int = socket.SHUT_RDWR) -> None:
        try:
            self._sock.shutdown(how)
        except OSError:
            pass  # already gone

    def close(self) -> None:
        """Called by simple-websocket as its reader ends: what is queued (a close reply among
        it) goes out first."""
        self.drain()
        self._sock.close()

    def _write_queue(self) -> None:
        while True:
            with self._work:
                while self._writing or (self._rest is None and not self._queue):
                    if self.error is not None or (self._stopping and not self._writing):
                        return
                    self._work.wait()
                if self._rest is not None:
                    pieces, self._rest = self._rest, None
                    size = sum(len(piece) for piece in pieces)
                else:
                    size, first = self._queue.popleft()
                    pieces = list(first)
                    while self._queue and size + self._queue[0][0] <= COALESCE:  # small ones: one write
                        more, extra = self._queue.popleft()
                        size += more
                        pieces.extend(extra)
                self._writing = True
            if not self._write(size, pieces, at_once=False):
                return

    def _write(self, size: int, pieces: list[bytes], at_once: bool) -> bool:
        """Write `size` bytes of pieces, all of them (the writer) or what the socket takes now
        (a caller, `at_once`: the rest is left to the writer). False once the socket failed."""
        rest: list[bytes] = []
        try:
            for index, buffer in enumerate(buffers := coalesced(pieces)):
                if not at_once:
                    self._sock.sendall(buffer)
                    continue
                sent = self._send_now(buffer)
                if sent < len(buffer):
                    rest = [memoryview(buffer)[sent:], *buffers[index + 1:]]
                    break
        except OSError as exc:
            with self._work:
                self.error = exc
                self._rest = None
                self._queue.clear()
                self.queued = 0
                self._writing = False
                self._work.notify()
                self._idle.notify_all()
            return False
        with self._work:
            self._writing = False
            self.queued -= size - sum(len(piece) for piece in rest)
            self.written += size - sum(len(piece) for piece in rest)
            if rest:
                self._rest = rest
            if rest or self._queue or self._stopping:
                self._work.notify()
            if not self.queued and self._stopping:  # only `drain` waits, and it sets that first
                self._idle.notify_all()  # (a notify costs a lock probe even with no waiter)
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def coalesced(pieces: list[bytes]) -> list[bytes]:
    """The pieces as buffers to write: small neighbours joined, big ones as they are."""
    buffers: list[bytes] = []
    batch: list[bytes] = []
    for piece in pieces:
        if len(piece) < COALESCE:
            batch.append(piece)
            continue
        if batch:
            buffers.append(b"".join(batch))
            batch = []
        buffers.append(piece)
    if batch:
        buffers.append(b"".join(batch))
    return buffers


def immediate_sender(sock: Any) -> Callable[[bytes], int] | None:
    """A send that never waits (the bytes the socket took now, 0 when it is full), or None for
    TLS, whose records only the writer's `sendall` resumes safely."""
    if hasattr(sock, "cipher"):  # ssl.SSLSocket and gevent's SSLSocket
        return None
    if type(sock).__module__.startswith("gevent."):
        def send(data: bytes) -> int:
            try:
                return sock.send(data, 0, 0.0)  # timeout 0: gevent raises instead of waiting
            except BlockingIOError:
                return 0
        return send
    if isinstance(sock, socket.socket):
        def send_plain(data: bytes) -> int:
            try:
                return sock.send(data, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return 0
        return send_plain
    return None


class Websocket(Server):
    """A server-side websocket; `compression` says whether to accept permessage-deflate,
    `send_buffer` how many bytes of unsent messages a client may leave before it is closed."""

    def __init__(self, environ: dict[str, Any], *, subprotocols: list[str], compression: bool,
                 ping_interval: float | None, max_message_size: int | None = None,
                 send_buffer: int = 64 * 1024 * 1024) -> None:
        self.compression = compression
        self.send_buffer = send_buffer
        try:
            super().__init__(environ, subprotocols=subprotocols, ping_interval=ping_interval or None,
                             max_message_size=max_message_size, receive_bytes=65536)
        except BaseException:
            if isinstance(getattr(self, "sock", None), SendAllSocket):
                self.sock.drain(0)  # the writer must not outlive a failed handshake
            raise

    def handshake(self) -> None:
        self.sock = SendAllSocket(self.sock, self.send_buffer)
        if not self.compression:
            self.environ = {key: value for key, value in self.environ.items()
                            if key != "HTTP_SEC_WEBSOCKET_EXTENSIONS"}
        self.raw_frames = "HTTP_SEC_WEBSOCKET_EXTENSIONS" not in self.environ
        super().handshake()

    def close(self, reason: int | None = None, message: str | None = None, wait: bool = True) -> None:
        """Send the close frame and end. Nothing is taken after it: `connected` falls before
        the frame is queued, so a message another greenlet sends meanwhile (a close from
        outside the relay: a worker that stops) cannot slip in behind it, counted as written
        while the client stops reading at the close.

        What is queued goes out first, for up to CLOSE_TIMEOUT; without `wait` that happens
        in a thread of its own (a greenlet under gevent), so a caller that serves other
        clients too (a kernel's shared iopub feed) is not held up by this one's backlog."""
        if not self.connected:
            raise ConnectionClosed(self.close_reason, self.close_message)
        self.connected = False
        frame = self.ws.send(CloseConnection(reason or CloseReason.NORMAL_CLOSURE, message))
        try:
            self.sock.send(frame)
        except BrokenPipeError:
            pass
        if wait:
            self.sock.close()
        else:
            threading.Thread(target=self.sock.close, daemon=True, name="websocket-close").start()

    def send(self, data: str | bytes) -> None:
        """Send one text (str) or binary message."""
        if isinstance(data, str):
            self.send_message([data.encode()], text=True)
        else:
            self.send_message([data])

    def send_message(self, pieces: list[bytes], text: bool = False) -> None:
        """Queue one message made of `pieces`, without joining them first; a client whose
        backlog passes the send buffer is closed with SLOW_CLIENT (ConnectionClosed)."""
        self.send_messages([(pieces, text)])

    def send_messages(self, messages: list[tuple[list[bytes], bool]]) -> list[int]:
        """Queue messages (`(pieces, is_text)`) to go out in one write where the socket takes
        them: a message at a time is a system call each, most of a worker's time when a kernel
        has many clients. Returns the offset (in `sock.taken`) at which each message ends.
        The messages count as one for the send buffer's rule, as in `send_message`."""
        if not self.connected:
            raise ConnectionClosed(self.close_reason, self.close_message)
        framed: list[bytes] = []
        ends: list[int] = []
        start = end = self.sock.taken
        for pieces, text in messages:
            length = sum(len(piece) for piece in pieces)
            if self.raw_frames:
                header = frame_header(TEXT if text else BINARY, length)
                framed.append(header)
                framed.extend(pieces)
                end += len(header) + length
            else:  # compression negotiated: wsproto frames and deflates
                joined = b"".join(pieces)
                frame = self.ws.send(TextMessage(data=joined.decode()) if text else BytesMessage(data=joined))
                framed.append(frame)
                end += len(frame)
            ends.append(end)
        try:
            accepted = self.sock.offer(framed)
        except OSError as exc:
            self.connected = False
            raise ConnectionClosed(self.close_reason, str(exc)) from exc
        if not accepted:
            dropped = self.sock.discard()
            log.warning("websocket on %s: the client reads too slowly: %d bytes unsent, over its"
                        " send buffer (%d bytes); closing it with code %d",
                        self.environ.get("PATH_INFO"), dropped + self.sock.queued + end - start,
                        self.send_buffer, SLOW_CLIENT)
            self.close(SLOW_CLIENT, SLOW_CLIENT_REASON, wait=False)  # its backlog is its own
            raise ConnectionClosed(SLOW_CLIENT, SLOW_CLIENT_REASON)
        return ends


def serve(environ: dict[str, Any], handler: Callable[[Websocket], None], **options: Any) -> Response:
    """Accept the websocket (`options` as for Websocket), run `handler` until it returns, and
    end the HTTP exchange the way the server in use expects after an upgrade."""
    ws = Websocket(environ, **options)
    _open.add(ws)
    try:
        if _going_away:  # accepted as the worker began to stop: send the client elsewhere
            ws.close(GOING_AWAY, _going_away[0])
        else:
            handler(ws)
    except ConnectionClosed:
        pass
    except Exception:  # the HTTP exchange is over: log it, never write a response into the stream
        log.exception("websocket handler on %s failed", environ.get("PATH_INFO"))
    finally:
        try:
            ws.close()
        except (ConnectionClosed, OSError):
            pass
        ws.sock.drain()  # the server may only take the connection back once all is written
        _open.discard(ws)
    return _AfterUpgrade(ws.mode)


def close_all(reason: str) -> int:
    """Close every open websocket of this process with GOING_AWAY (what each has already
    taken is written first), and any opened later at once; returns how many were open. For
    a worker that stops: its clients reconnect to another at once instead of hanging on
    until it is killed."""
    _going_away[:] = [reason]
    closing = [ws for ws in list(_open) if ws.connected]
    for ws in closing:
        try:
            ws.close(GOING_AWAY, reason, wait=False)  # side by side: a slow one holds up no other
        except (ConnectionClosed, OSError):
            pass
    return len(closing)


class _AfterUpgrade(Response):
    """The response once the connection has been upgraded: nothing more may be written."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        if self.mode == "gunicorn":
            raise StopIteration()
        if self.mode == "werkzeug":
            return super().__call__(environ, start_response)
        return []
