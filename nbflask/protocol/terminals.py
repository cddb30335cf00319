"""What the kernel host and the web workers agree on about a terminal's traffic.

A terminal's input waits in the host for room (bounded in bytes), so a relay sends a paste in
pieces, and a piece that found no room is refused with `FULL`; its output goes out on the host's
event feed under the terminal's own topic.
"""

from __future__ import annotations

INPUT_WAIT = 5.0  # seconds a piece waits for room in the host before it is refused
FULL = "TerminalInputFull"  # the reason of that refusal


def input_piece(limit: int) -> int:
    """How many characters of a page's stdin message go to the host at a time: a piece always
    fits in the queue (UTF-8 takes at most 4 bytes a character), a paste of ASCII fills it in
    four, and a big paste costs few requests."""
    return max(1, limit // 4)


def topic(name: str) -> bytes:
    """The event-feed topic of terminal `name`; the closing '/' keeps `1` from matching `10`."""
    return f"term:{name}/".encode()
