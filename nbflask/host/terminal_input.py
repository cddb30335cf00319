"""A terminal's input on its way to the pty, bounded in bytes (inside the kernel host).

A program that stops reading its input (`sleep` under a 150 MiB paste) fills the pty's own
buffer (a few KiB), and everything typed or pasted after that waits here. Without a bound a
paste lived in the host's memory until the program read it, and the host kept the memory
after. So pieces wait for room instead, and a piece that found none within `INPUT_WAIT`
seconds is refused: the relay tells the page what was not sent, and nothing is dropped unsaid.
"""

from __future__ import annotations

from collections import deque

import gevent
import gevent.event

from ..api_error import APIError
from ..protocol.terminals import FULL, INPUT_WAIT


class InputQueue:
    """Bytes waiting for the pty, in order, at most `limit` of them (counted until written)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pieces: deque[bytes] = deque()
        self.size = 0  # bytes queued or being written
        self.closed = False
        self.changed = gevent.event.Event()  # set whenever a piece arrives, bytes were written, or it closed

    def put(self, data: bytes, wait: float = INPUT_WAIT) -> None:
        """Queue `data`, waiting up to `wait` seconds for room; APIError(503, FULL) if none came."""
        if len(data) > self.limit:
            raise APIError(413, f"{len(data)} bytes of input in one piece; at most {self.limit}",
                           "Payload Too Large")
        with gevent.Timeout(wait, False):
            while self.size + len(data) > self.limit and not self.closed:
                self.changed.clear()
                self.changed.wait()
        if self.closed:
            raise APIError(404, "the terminal ended; its input was not sent")
        if self.size + len(data) > self.limit:
            raise APIError(503, f"the program has not taken its input: {self.size} bytes waited"
                                f" {wait:g} s", FULL)
        self.pieces.append(data)
        self.size += len(data)
        self.changed.set()

    def get(self) -> bytes:
        """The oldest piece, waiting for one; its bytes count until `written` says so."""
        while not self.pieces:
            self.changed.clear()
            self.changed.wait()
        return self.pieces.popleft()

    def written(self, count: int) -> None:
        self.size -= count
        self.changed.set()

    def close(self) -> None:
        """The terminal ended: pieces waiting for room are refused at once."""
        self.closed = True
        self.changed.set()
