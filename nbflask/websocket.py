"""A server-side websocket with the transport fixes listed below (each measured), and the
methods its users need: the relays, the websocket views (blueprints/upgrade.py accepts the
upgrade and ends the HTTP exchange), and a worker that stops (`close_all`).

simple-websocket does the handshake, the reading, ping/pong and closing, with these changes:
everything is written by one writer per connection (websocket_writer.py), from a queue bounded
in bytes, with `sendall` (simple-websocket 1.1.0 ignores partial writes, which corrupts big
frames under gevent on plain TCP); a client that reads too slowly is closed with SLOW_CLIENT
instead of making the server hold all that its kernel prints. TCP_NODELAY is set (no Nagle
stall on each round trip), permessage-deflate is only negotiated when the deployment enables
it, and uncompressed data frames are written here: a 2-10 byte header, then the message's
pieces as they are, where wsproto would copy a 1 MiB payload four times.

flask-sock is not used: it builds simple-websocket's own `Server` (no subclass, so none of the
above), and it accepts the upgrade before the view runs, so a missing kernel could not get its
404 (see docs/kernels.md). Nothing here needs Flask: only the accepting edge does.
"""

from __future__ import annotations

import logging
import struct
import threading
import weakref
from collections.abc import Callable
from typing import Any

from simple_websocket import ConnectionClosed, Server
from wsproto.events import BytesMessage, CloseConnection, TextMessage
from wsproto.frame_protocol import CloseReason

from .websocket_writer import CLOSE_TIMEOUT, SendAllSocket

log = logging.getLogger(__name__)

TEXT, BINARY = 0x1, 0x2
SLOW_CLIENT = 4008  # close code for a client whose unsent messages passed the send buffer
SLOW_CLIENT_REASON = "client too slow: send buffer full; reconnect to catch up"
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


class Websocket(Server):
    """A server-side websocket; `compression` says whether to accept permessage-deflate,
    `send_buffer` how many bytes of unsent messages a client may leave before it is closed.

    Read with `receive` (simple-websocket's); write with `send`, `send_message` and
    `send_messages`, whose offsets say, through `is_written`, which messages have reached the
    socket. Once this side ends the connection (a close, or a write that failed), a `receive`
    waiting in another thread or greenlet returns at once.
    """

    sock: SendAllSocket  # from the handshake on (simple-websocket's attribute, only used here)

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
        """Put our writer under simple-websocket before it writes its reply (the 101)."""
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
        self.event.set()  # a reader waiting in `receive` ends now (the frame is queued first)
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

    def send_message(self, pieces: list[bytes], text: bool = False) -> int:
        """Queue one message made of `pieces`, without joining them first; a client whose
        backlog passes the send buffer is closed with SLOW_CLIENT (ConnectionClosed). Returns
        the offset at which the message ends (see `is_written`)."""
        return self.send_messages([(pieces, text)])[0]

    def send_messages(self, messages: list[tuple[list[bytes], bool]]) -> list[int]:
        """Queue messages (`(pieces, is_text)`) to go out in one write where the socket takes
        them: a message at a time is a system call each, most of a worker's time when a kernel
        has many clients. Returns the offset at which each message ends (see `is_written`).
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
            self.event.set()
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

    def is_written(self, end: int) -> bool:
        """Whether the message that ends at offset `end` (as `send_message` or `send_messages`
        returned it) was written whole to the socket. Only those count as delivered: what is
        still queued when the connection ends is lost (a slow client's close drops it), and a
        message dropped by `discard_queued` never counts, whatever is written after it."""
        return self.sock.is_out(end)

    def discard_queued(self) -> int:
        """Drop the messages not begun yet (a newer connection of the client will have them);
        returns the bytes dropped."""
        return self.sock.discard()

    def drain(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Take no more messages, and wait up to `timeout` seconds for those taken to be
        written; past it the connection is dropped. True if all went out in time. A drain
        never cuts short the time an earlier one (a close's) granted."""
        return self.sock.drain(timeout)


def run(environ: dict[str, Any], handler: Callable[[Websocket], None], **options: Any) -> str:
    """Accept the websocket of the request `environ` (`options` as for Websocket), run
    `handler` on it until it returns, then close it and write out what it took. Returns the
    server's `Websocket.mode` ("werkzeug", "gunicorn", "gevent"), which says how the HTTP
    exchange must end now that the connection was upgraded."""
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
        ws.drain()  # the server may only take the connection back once all is written
        _open.discard(ws)
    return ws.mode


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
