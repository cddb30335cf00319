"""How far a kernel websocket's client has got in its kernel's iopub, for the kernel host.

The host keeps each session's place in the kernel's replay buffer (host/replay.py), so a
client that comes back is handed what came after it. A message counts once it is written to
the client's socket, not while it is queued (a slow client's close drops what is queued), so
a killed worker costs its clients no output.

The host hears it each time a relay's pump (or the shared feed, for all its relays at once)
falls idle, and at most every PROGRESS_INTERVAL during a burst. A message written at once is
reported before the pump waits, so it never comes twice; one still queued (a slow client) is
looked at again within PROGRESS_INTERVAL. (Throttling the idle reports too saved about a
third of their cost and repeated what a worker killed just after a write had sent:
docs/performance.md.)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

from ..protocol import wire
from ..websocket import Websocket

PROGRESS_INTERVAL = 0.05  # at most this often, the host hears how far each client has got


class Progress:
    """The iopub messages handed to one websocket, until each is written out; the newest
    written is where the client has got."""

    def __init__(self, ws: Websocket) -> None:
        self.ws = ws
        self.last: bytes | None = None  # header of the last iopub message written out
        self.unwritten: deque[tuple[int, bytes]] = deque()  # (end offset, header) of iopub queued
        self.reported_at = 0.0
        self.unreported = False  # a message was handed over since the last report

    def queued(self, messages: Iterable[tuple[int, bytes]]) -> None:
        """iopub messages handed to the websocket: `(end offset, header)` of each, in order."""
        self.unwritten.extend(messages)
        self.unreported = True

    def take(self, idle: bool) -> bytes | None:
        """The header of the newest iopub message written out since the last report, if a
        report may go now (at once when `idle`, else PROGRESS_INTERVAL after the last): for
        the caller to send to the host."""
        now = time.monotonic()
        if not idle and now - self.reported_at < PROGRESS_INTERVAL:
            return None
        self.reported_at = now  # even if nothing moved: the next look is due in as long
        header = self.advance()
        self.unreported = bool(self.unwritten)
        return header

    def due_in(self) -> float:
        """Seconds until the next report may go (at least 1 ms: a poll needs a wait)."""
        return max(0.001, self.reported_at + PROGRESS_INTERVAL - time.monotonic())

    def advance(self) -> bytes | None:
        """Move `last` to the newest iopub message now written out; its header if it moved."""
        header = None
        while self.unwritten and self.ws.is_written(self.unwritten[0][0]):
            header = self.unwritten.popleft()[1]
        if header is not None:
            self.last = header
        return header

    def last_msg_id(self) -> str | None:
        """The msg_id of the last iopub message written out, if any."""
        if self.last is None:
            return None
        try:
            return str(wire.loads_object(self.last, "header").get("msg_id"))
        except wire.WireError:
            return None
