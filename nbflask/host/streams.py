"""One stream output's text (stdout, stderr) as a front-end shows it, kept cheaply and bounded.

Carriage returns and backspaces are applied as a terminal would; a stream longer than its
limit keeps its newest part and says what was cut. A long run writes a stream thousands of
times, so appending costs little and messages are parsed only when the text is read.
"""

from __future__ import annotations

import json
import re
from collections import deque

CUT_NOTE = "[nbflask: {cut} earlier characters of this stream were dropped]\n"


def apply_controls(text: str) -> str:
    """Text as a terminal would leave it: `\\r` returns to the start of the line (what follows
    overwrites it), `\\b` steps back one character; `\\r\\n` is a plain newline."""
    if "\r" not in text and "\b" not in text:
        return text
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(_apply_line(line) for line in lines)


def _apply_line(line: str) -> str:
    shown: list[str] = []
    column = 0
    for char in line:
        if char == "\r":
            column = 0
        elif char == "\b":
            column = max(0, column - 1)
        else:
            if column < len(shown):
                shown[column] = char
            else:
                shown.append(char)
            column += 1
    return "".join(shown)


class StreamText:
    """One stream output's text, appended to cheaply (a long run writes it thousands of times):
    kept as pieces, controls applied to the current line only, at most `limit` characters, the
    newest, cut at a line start where there is one.

    Messages come as their raw content JSON and are parsed only when the text is read: most of
    a long run's text is cut before anyone reads it, so it is dropped unparsed once the newer
    messages surely hold `limit` characters (the cut is then counted from their bytes)."""

    def __init__(self, limit: int, born: int = 0) -> None:
        self.limit = limit
        self.born = born  # the version of its run that made it (a follower knows it is the same)
        self.pieces: deque[str] = deque()
        self.length = 0
        self.cut = 0  # characters dropped from the start
        self.estimated = False  # `cut` counts some messages dropped unparsed, by their bytes
        self.raw: deque[bytes] = deque()  # content JSON not parsed yet, newest last
        self.raw_bytes = 0
        self.raw_chars = 0  # at least this many characters are in `raw`

    def write(self, text: str) -> None:
        self.fold()  # after what came raw before it
        self._write(text)

    def _write(self, text: str) -> None:
        if "\r" in text or "\b" in text:  # they reach back to the start of the current line
            line: list[str] = []
            while self.pieces and "\n" not in self.pieces[-1]:
                line.insert(0, self.pieces.pop())
            if self.pieces:
                last = self.pieces.pop()
                head, newline, tail = last.rpartition("\n")
                self.pieces.append(head + newline)
                line.insert(0, tail)
            self.length -= sum(len(piece) for piece in line)
            text = apply_controls("".join(line) + text)
        if text:
            self.pieces.append(text)
            self.length += len(text)
        if self.length > self.limit:
            self._trim()

    def write_raw(self, content: bytes) -> None:
        self.raw.append(content)
        self.raw_bytes += len(content)
        self.raw_chars += least_chars(content)
        while self.raw_chars - least_chars(self.raw[0]) >= self.limit:
            dropped = self.raw.popleft()  # what follows is kept instead, and all before it is cut
            self.raw_bytes -= len(dropped)
            self.raw_chars -= least_chars(dropped)
            self._drop(self.length)
            self.pieces.clear()
            self.cut += max(len(dropped) - ENVELOPE, 0)
            self.estimated = True
        if self.raw_bytes > FOLD_FACTOR * self.limit + FOLD_SLACK:  # many small ones: parse them
            self.fold()

    def fold(self) -> None:
        """Parse what came raw, in order."""
        while self.raw:
            content = self.raw.popleft()
            try:
                text = json.loads(content).get("text", "")
            except (ValueError, AttributeError):
                text = ""
            self._write(text if isinstance(text, str) else "")
        self.raw_bytes = self.raw_chars = 0

    def _trim(self) -> None:
        while self.length - len(self.pieces[0]) >= self.limit:
            self._drop(len(self.pieces.popleft()))
        over = self.length - self.limit
        if over <= 0:
            return
        first = self.pieces.popleft()
        newline = first.find("\n", max(over - 1, 0))
        start = newline + 1 if newline >= 0 else over
        self._drop(start)
        if first[start:]:
            self.pieces.appendleft(first[start:])

    def _drop(self, count: int) -> None:
        self.length -= count
        self.cut += count

    @property
    def size(self) -> int:
        return self.length + self.raw_bytes

    def value(self) -> str:
        self.fold()
        text = "".join(self.pieces)
        self.pieces = deque([text] if text else [])
        return self.note() + text

    def note(self) -> str:
        """The line saying what was cut from the start ("" if nothing was): while it stays the
        same, the text before the current line stays the same too."""
        if not self.cut:
            return ""
        return CUT_NOTE.format(cut=f"about {self.cut}" if self.estimated else self.cut)


ENVELOPE = len(b'{"name": "stdout", "text": ""}')
JSON_BYTES_PER_CHAR = 6  # at most: a `\u00XX` escape (jupyter_client writes UTF-8, not \u escapes)
FOLD_FACTOR, FOLD_SLACK = 8, 1 << 16  # raw bytes kept unparsed: at most this times `limit`, plus this
STREAM_START = re.compile(rb'\{\s*"name"\s*:\s*"(stdout|stderr)"\s*,\s*"text"\s*:')


def least_chars(content: bytes) -> int:
    """The fewest characters of text a stream message's content JSON can hold."""
    return max(len(content) - 64, 0) // JSON_BYTES_PER_CHAR

