"""What a cell's outputs look like once its iopub messages are applied, as a front-end shows them.

The kernel host keeps one Recording per kernel, so outputs survive every browser and every web
worker: stream text merged per stream with carriage returns and backspaces applied,
`clear_output` (at once, or with `wait` when the next output comes), and `update_display_data`
applied to every output showing that display id, in any cell. The result is a list of nbformat
output dicts per execute request, ready to be written into the stored notebook.

A recording is bounded: a stream longer than `max_stream` characters keeps its newest part and
says what was cut, and executions are forgotten oldest first once the recording holds more
than `max_bytes` or they ended more than `max_age` seconds ago.
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

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

    def __init__(self, limit: int) -> None:
        self.limit = limit
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
        if not self.cut:
            return text
        return CUT_NOTE.format(cut=f"about {self.cut}" if self.estimated else self.cut) + text


ENVELOPE = len(b'{"name": "stdout", "text": ""}')
JSON_BYTES_PER_CHAR = 6  # at most: a `\u00XX` escape (jupyter_client writes UTF-8, not \u escapes)
FOLD_FACTOR, FOLD_SLACK = 8, 1 << 16  # raw bytes kept unparsed: at most this times `limit`, plus this
STREAM_START = re.compile(rb'\{\s*"name"\s*:\s*"(stdout|stderr)"\s*,\s*"text"\s*:')


def least_chars(content: bytes) -> int:
    """The fewest characters of text a stream message's content JSON can hold."""
    return max(len(content) - 64, 0) // JSON_BYTES_PER_CHAR


def measure(output: dict[str, Any]) -> int:
    """About the bytes an output takes: its text, or its JSON (done once per rich output)."""
    if output["output_type"] == "stream":
        return output["text"].size + 64
    return len(json.dumps(output, default=str))


def output_of(msg_type: str, content: dict[str, Any]) -> dict[str, Any] | None:
    """The nbformat output for one iopub message, or None if it is not an output."""
    if msg_type == "stream":
        return {"output_type": "stream", "name": content.get("name", "stdout"),
                "text": str(content.get("text", ""))}
    if msg_type in ("display_data", "execute_result"):
        output = {"output_type": msg_type, "data": content.get("data", {}),
                  "metadata": content.get("metadata", {})}
        if msg_type == "execute_result":
            output["execution_count"] = content.get("execution_count")
        return output
    if msg_type == "error":
        return {"output_type": "error", "ename": content.get("ename", ""),
                "evalue": content.get("evalue", ""), "traceback": list(content.get("traceback", []))}
    return None


@dataclass
class Execution:
    """One execute request's outputs, as they stand."""

    msg_id: str
    cell_id: str | None = None
    path: str | None = None
    code: str | None = None
    execution_count: int | None = None
    status: str = "running"  # then ok, error or aborted
    outputs: list[dict[str, Any]] = field(default_factory=list)
    displays: dict[str, list[int]] = field(default_factory=dict)  # display id -> output indexes
    clear_pending: bool = False
    sizes: list[int] = field(default_factory=list)  # about how many bytes each output holds
    changes: int = 0  # bumped on every change, so savers know what is new
    ended_at: float | None = None

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def model(self) -> dict[str, Any]:
        return {"msg_id": self.msg_id, "cell_id": self.cell_id, "path": self.path, "code": self.code,
                "execution_count": self.execution_count, "status": self.status,
                "outputs": self.notebook_outputs()}

    def notebook_outputs(self) -> list[dict[str, Any]]:
        """The outputs as nbformat dicts, each stream with a note of what was cut from it."""
        return [{**output, "text": output["text"].value()} if output["output_type"] == "stream" else output
                for output in self.outputs]

    def clear(self) -> None:
        self.outputs.clear()
        self.sizes.clear()
        self.displays.clear()
        self.clear_pending = False

    def add(self, output: dict[str, Any], display_id: str | None, max_stream: int) -> None:
        if self.clear_pending:
            self.clear()
        last = self.outputs[-1] if self.outputs else None
        if output["output_type"] == "stream":
            if last is None or last["output_type"] != "stream" or last["name"] != output["name"]:
                last = {**output, "text": StreamText(max_stream)}
                self.outputs.append(last)
                self.sizes.append(0)
            last["text"].write(output["text"])
        else:
            self.outputs.append(output)
            self.sizes.append(0)
            if display_id:
                self.displays.setdefault(display_id, []).append(len(self.outputs) - 1)
        self.sizes[-1] = measure(self.outputs[-1])
        self.changes += 1

    def add_stream(self, name: str, content: bytes, max_stream: int) -> None:
        """A stream message, by its raw content JSON (parsed when read)."""
        if self.clear_pending:
            self.clear()
        last = self.outputs[-1] if self.outputs else None
        if last is None or last["output_type"] != "stream" or last["name"] != name:
            last = {"output_type": "stream", "name": name, "text": StreamText(max_stream)}
            self.outputs.append(last)
            self.sizes.append(0)
        last["text"].write_raw(content)
        self.sizes[-1] = measure(last)
        self.changes += 1

    def update_display(self, display_id: str, content: dict[str, Any]) -> bool:
        indexes = self.displays.get(display_id, [])
        for index in indexes:
            self.outputs[index]["data"] = content.get("data", {})
            self.outputs[index]["metadata"] = content.get("metadata", {})
            self.sizes[index] = measure(self.outputs[index])
        if indexes:
            self.changes += 1
        return bool(indexes)


class Recording:
    """The executions of one kernel, newest last, looked up by the execute request's msg_id."""

    def __init__(self, max_bytes: int, max_age: float, max_stream: int) -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.max_stream = max_stream
        self.executions: OrderedDict[str, Execution] = OrderedDict()
        self.dropped = 0  # executions forgotten to keep within the bounds
        self.size = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.max_age > 0

    def expect(self, msg_id: str, cell_id: str | None, path: str | None) -> Execution:
        """An execute request is on its way to the kernel: where its outputs belong."""
        execution = self.executions.get(msg_id)
        if execution is None:
            execution = self.executions[msg_id] = Execution(msg_id)
        execution.cell_id = cell_id or execution.cell_id
        execution.path = path or execution.path
        return execution

    def apply(self, msg_type: str, parent_id: str | None, content: dict[str, Any]) -> Execution | None:
        """Apply one iopub message (`parent_id`: its request's msg_id); the run it changed."""
        if not self.enabled:
            return None
        if msg_type == "update_display_data":  # from any cell, or from no cell (a widget)
            display_id = (content.get("transient") or {}).get("display_id")
            return self._update_display(str(display_id or ""), content)
        if not parent_id:
            return None
        execution = self.executions.get(parent_id)
        if execution is None:
            if msg_type != "execute_input":
                return None  # not an execution: kernel_info, completions, comms
            execution = self.executions[parent_id] = Execution(parent_id)
        before = execution.size
        if msg_type == "execute_input":
            execution.execution_count = content.get("execution_count")
            execution.code = content.get("code") if isinstance(content.get("code"), str) else None
            execution.changes += 1
        elif msg_type == "clear_output":
            if content.get("wait"):
                execution.clear_pending = True
            else:
                execution.clear()
                execution.changes += 1
        elif msg_type == "status" and content.get("execution_state") == "idle":
            if execution.status == "running":
                execution.status = "ok"
            execution.ended_at = time.monotonic()
            execution.changes += 1
        elif msg_type == "error":
            execution.status = "error"
            execution.add(output_of(msg_type, content), None, self.max_stream)  # type: ignore[arg-type]
        else:
            output = output_of(msg_type, content)
            if output is None:
                return None
            execution.add(output, (content.get("transient") or {}).get("display_id"), self.max_stream)
        self.size += execution.size - before
        self.trim()
        return execution

    def apply_stream(self, parent_id: str | None, content: bytes) -> Execution | None:
        """A stream message given as its content JSON, unparsed when it looks like what
        ipykernel sends (the stream's name first): a long run's stream costs a list append."""
        execution = self.executions.get(parent_id or "")
        if not self.enabled or execution is None:
            return None
        start = STREAM_START.match(content)
        if start is None:
            try:
                parsed = json.loads(content)
            except ValueError:
                return None
            return self.apply("stream", parent_id, parsed) if isinstance(parsed, dict) else None
        before = execution.size
        execution.add_stream(start.group(1).decode(), content, self.max_stream)
        self.size += execution.size - before
        self.trim()
        return execution

    def finish(self, msg_id: str, status: str) -> None:
        """The kernel's execute_reply: ok, error or aborted."""
        execution = self.executions.get(msg_id)
        if execution is not None and status in ("ok", "error", "aborted") and execution.status != status:
            execution.status = status  # a new version only if it says something new
            execution.changes += 1

    def _update_display(self, display_id: str, content: dict[str, Any]) -> Execution | None:
        changed = None
        for execution in self.executions.values():
            before = execution.size
            if display_id and execution.update_display(display_id, content):
                self.size += execution.size - before
                changed = execution
        return changed

    def trim(self) -> None:
        """Forget the oldest ended executions past the bounds; a running one is never dropped."""
        oldest = time.monotonic() - self.max_age
        size, doomed = self.size, []
        # Oldest first, and only as far as needed: this runs for every message recorded, and
        # a copy of every execution kept was a fifth of the kernel host's time.
        for msg_id, execution in self.executions.items():
            over = size > self.max_bytes
            stale = execution.ended_at is not None and execution.ended_at < oldest
            if not (over or stale):
                break
            if execution.status == "running" and execution.ended_at is None:
                continue
            doomed.append(msg_id)
            size -= execution.size
        for msg_id in doomed:
            del self.executions[msg_id]
        self.size = size
        self.dropped += len(doomed)

    def running(self) -> list[Execution]:
        return [execution for execution in self.executions.values() if execution.ended_at is None]
