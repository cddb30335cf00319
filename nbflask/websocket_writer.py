"""The writing half of a websocket connection: one writer per connection, from a queue
bounded in bytes, so a message is always written whole and in order, and a client that reads
too slowly costs at most its send buffer.

simple-websocket 1.1.0 writes with `send` and ignores partial writes, which corrupts big
frames under gevent on plain TCP: everything here goes out with `sendall`, by the
connection's writer thread (a greenlet once gevent has patched `threading`), except what the
socket takes at once while nothing waits (as cheap as a plain send). Small messages waiting
together are joined into one write; big ones are written as they are, never copied.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

COALESCE = 64 * 1024  # pieces smaller than this are joined into one write
CLOSE_TIMEOUT = 30.0  # seconds the last frames (the close among them) may take to go out


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
        """Take a control frame (or the handshake's reply), whatever waits: `limit` is for messages."""
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
        for CLOSE_TIMEOUT while the relay ending beside it may wait for less."""
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
        """Shut the connection down (a writer stuck on it wakes up with an error)."""
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
