"""Accepting a websocket from any of our servers, with the fixes measured in DESIGN section 7.

simple-websocket (under flask-sock) does the handshake, the reading, ping/pong and closing,
with these changes: its socket's `send` becomes `sendall` under a lock (simple-websocket 1.1.0
ignores partial writes, which corrupts big frames under gevent on plain TCP), TCP_NODELAY is
set (no Nagle stall on each round trip), permessage-deflate is only negotiated when the
deployment enables it, and uncompressed data frames are written here: a 2-10 byte header,
then the message's pieces as they are, where wsproto would copy a 1 MiB payload four times.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from flask import Response
from simple_websocket import ConnectionClosed, Server

log = logging.getLogger("nbflask.kernels.websocket")

COALESCE = 64 * 1024  # pieces smaller than this are joined into one write
TEXT, BINARY = 0x1, 0x2


def frame_header(opcode: int, length: int) -> bytes:
    """RFC 6455 header of a final, unmasked (server-to-client) frame."""
    if length < 126:
        return struct.pack("!BB", 0x80 | opcode, length)
    if length < 1 << 16:
        return struct.pack("!BBH", 0x80 | opcode, 126, length)
    return struct.pack("!BBQ", 0x80 | opcode, 127, length)


class SendAllSocket:
    """A socket whose `send` writes everything, one writer at a time."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass  # not TCP (a unix socket behind a proxy): nothing to tune

    def send(self, data: bytes) -> int:
        with self._lock:
            self._sock.sendall(data)
        return len(data)

    def send_pieces(self, pieces: list[bytes]) -> None:
        """Write the pieces in order, without interleaving: small ones joined, big ones as is."""
        batch: list[bytes] = []
        with self._lock:
            for piece in pieces:
                if len(piece) < COALESCE:
                    batch.append(piece)
                    continue
                if batch:
                    self._sock.sendall(b"".join(batch))
                    batch = []
                self._sock.sendall(piece)
            if batch:
                self._sock.sendall(b"".join(batch))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class Websocket(Server):
    """A server-side websocket; `compression` says whether to accept permessage-deflate."""

    def __init__(self, environ: dict[str, Any], *, subprotocols: list[str], compression: bool,
                 ping_interval: float | None, max_message_size: int | None = None) -> None:
        self.compression = compression
        super().__init__(environ, subprotocols=subprotocols, ping_interval=ping_interval or None,
                         max_message_size=max_message_size, receive_bytes=65536)

    def handshake(self) -> None:
        self.sock = SendAllSocket(self.sock)
        if not self.compression:
            self.environ = {key: value for key, value in self.environ.items()
                            if key != "HTTP_SEC_WEBSOCKET_EXTENSIONS"}
        self.raw_frames = "HTTP_SEC_WEBSOCKET_EXTENSIONS" not in self.environ
        super().handshake()

    def send(self, data: str | bytes) -> None:
        """Send one text (str) or binary message."""
        if isinstance(data, str):
            self.send_message([data.encode()], text=True)
        else:
            self.send_message([data])

    def send_message(self, pieces: list[bytes], text: bool = False) -> None:
        """Send one message made of `pieces`, without joining them first."""
        if not self.connected:
            raise ConnectionClosed(self.close_reason, self.close_message)
        if not self.raw_frames:  # compression negotiated: wsproto frames and deflates
            joined = b"".join(pieces)
            super().send(joined.decode() if text else joined)
            return
        length = sum(len(piece) for piece in pieces)
        self.sock.send_pieces([frame_header(TEXT if text else BINARY, length), *pieces])


def is_upgrade(environ: dict[str, Any]) -> bool:
    return environ.get("HTTP_UPGRADE", "").lower() == "websocket"


def serve(environ: dict[str, Any], handler: Callable[[Websocket], None], **options: Any) -> Response:
    """Accept the websocket (`options` as for Websocket), run `handler` until it returns, and
    end the HTTP exchange the way the server in use expects after an upgrade."""
    ws = Websocket(environ, **options)
    try:
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
    return _AfterUpgrade(ws.mode)


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
