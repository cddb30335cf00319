"""What a kernel said on iopub lately, so a client that reconnects gets what it missed.

The kernel host keeps one ReplayBuffer per kernel, bounded by bytes and by age (Jupyter
Server keeps an unbounded list per session), and one cursor per websocket session: the last
message that session's connection delivered. A connection that comes back with the same
`session_id` is handed everything after its cursor; when the cursor has fallen out of the
buffer, it is handed what is left and told how many messages were dropped.

It also keeps the replies (shell, control, stdin) that came for a session while it had no
connection: the kernel answers the connection that asked, and a relay whose client left
hands the host the answers still due (Relay.linger). They go to the session's next
connection, once, within the same bounds.

Messages are kept as the kernel's signed frames, unparsed: the relay verifies them when it
passes them on, as it does live ones.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Entry:
    seq: int
    at: float
    msg_id: str
    frames: list[bytes]
    size: int


@dataclass
class Parked:
    session_id: str
    channel: str
    frames: list[bytes]
    at: float
    size: int


@dataclass
class Cursor:
    seq: int
    at: float = field(default_factory=time.monotonic)


ENTRY_OVERHEAD = 512  # bytes of Python objects per kept message, besides its frames


class ReplayBuffer:
    """The newest iopub messages of one kernel, at most `max_bytes` and `max_age` seconds old."""

    def __init__(self, max_bytes: int, max_age: float) -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.entries: deque[Entry] = deque()
        self.size = 0
        self.latest = 0  # seq of the newest message ever added; 0 before the first
        self.cursors: dict[str, Cursor] = {}
        self.parked: deque[Parked] = deque()  # replies for sessions away, oldest first
        self.parked_size = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.max_age > 0

    def append(self, msg_id: str, frames: list[bytes]) -> None:
        self.latest += 1
        if not self.enabled:
            return
        size = ENTRY_OVERHEAD + sum(len(frame) for frame in frames)
        self.entries.append(Entry(self.latest, time.monotonic(), msg_id, frames, size))
        self.size += size
        self.trim()

    def trim(self) -> None:
        oldest = time.monotonic() - self.max_age
        while self.entries and (self.size > self.max_bytes or self.entries[0].at < oldest):
            self.size -= self.entries.popleft().size
        while self.parked and (self.parked_size > self.max_bytes or self.parked[0].at < oldest):
            self.parked_size -= self.parked.popleft().size

    def position_of(self, msg_id: str) -> int | None:
        """The seq of message `msg_id`, looked for from the newest end."""
        for entry in reversed(self.entries):
            if entry.msg_id == msg_id:
                return entry.seq
        return None

    def msg_id_at(self, seq: int) -> str | None:
        for entry in reversed(self.entries):
            if entry.seq == seq:
                return entry.msg_id
            if entry.seq < seq:
                break
        return None

    def since(self, seq: int) -> tuple[list[Entry], int]:
        """Messages after `seq`, and how many of those were already dropped."""
        self.trim()
        first = self.entries[0].seq if self.entries else self.latest + 1
        dropped = max(0, first - seq - 1)
        return [entry for entry in self.entries if entry.seq > seq], dropped

    # Sessions ------------------------------------------------------------------------------

    def remember(self, session_id: str, seq: int) -> None:
        """Session `session_id` has seen everything up to `seq`."""
        self.cursors[session_id] = Cursor(seq)
        oldest = time.monotonic() - self.max_age
        for name, cursor in list(self.cursors.items()):
            if cursor.at < oldest:
                del self.cursors[name]

    def take(self, session_id: str) -> int | None:
        """The place of session `session_id`, which is back; None for a session never seen
        (or gone longer than the buffer keeps messages, or with replay off)."""
        cursor = self.cursors.pop(session_id, None)
        if cursor is None or not self.enabled or time.monotonic() - cursor.at > self.max_age:
            return None
        return cursor.seq

    # Replies for sessions away --------------------------------------------------------------

    def park(self, session_id: str, channel: str, frames: list[bytes]) -> None:
        """Keep a reply the kernel sent to session `session_id` while it had no connection."""
        if not self.enabled:
            return
        size = ENTRY_OVERHEAD + sum(len(frame) for frame in frames)
        self.parked.append(Parked(session_id, channel, frames, time.monotonic(), size))
        self.parked_size += size
        self.trim()

    def unpark(self, session_id: str) -> list[tuple[str, list[bytes]]]:
        """The replies kept for session `session_id`, in order, as `(channel, frames)`; they
        are handed over once."""
        self.trim()
        mine = [reply for reply in self.parked if reply.session_id == session_id]
        if mine:
            self.parked = deque(reply for reply in self.parked if reply.session_id != session_id)
            self.parked_size -= sum(reply.size for reply in mine)
        return [(reply.channel, reply.frames) for reply in mine]
