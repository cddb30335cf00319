"""What a cell's outputs look like once its iopub messages are applied, as a front-end shows them.

The kernel host keeps one Recording per kernel, so outputs survive every browser and every web
worker: stream text merged per stream with carriage returns and backspaces applied,
`clear_output` (at once, or with `wait` when the next output comes), and `update_display_data`
applied to every output showing that display id, in any cell. The result is a list of nbformat
output dicts per execute request, ready to be written into the stored notebook.

A recording is bounded: a stream longer than `max_stream` characters keeps its newest part and
says what was cut, and executions are forgotten oldest first once the recording holds more
than `max_bytes` or they ended more than `max_age` seconds ago. What a run costs is counted
whole (its code, ids and the host's own records of it, not only its outputs): thousands of
runs that print nothing must not outgrow the bound either.

Each change of a run gets a version; `Execution.delta` tells a follower what changed since the
version it has (new or changed outputs, text appended to a stream), so following a run costs
what it printed, not the square of it.
"""

from __future__ import annotations

import bisect
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


def measure(output: dict[str, Any]) -> int:
    """About the bytes an output takes: its text and buffers, or its JSON (done once per rich
    output)."""
    if output["output_type"] == "stream":
        return output["text"].size + STREAM_COST
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


# What the host's objects cost besides the text they hold, measured with tracemalloc
# (tests/runs/test_outputs.py holds the accounting to it): a run's records, ids and dict slots; each
# output's dict and list slots; a stream's buffers.
RUN_COST = 1000
OUTPUT_COST = 500
STREAM_COST = 1500


@dataclass(eq=False)
class Execution:
    """One execute request's outputs, as they stand, and the version of every change."""

    msg_id: str
    cell_id: str | None = None
    path: str | None = None
    code: str | None = None
    execution_count: int | None = None
    status: str = "running"  # then ok, error or aborted
    reason: str | None = None  # why it ended without the kernel's word (it died, or was restarted)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    displays: dict[str, list[int]] = field(default_factory=dict)  # display id -> output indexes
    clear_pending: bool = False
    sizes: list[int] = field(default_factory=list)  # about how many bytes each output holds
    output_bytes: int = 0  # their sum, kept as they change (counted per message, it was O(outputs))
    # the version of each output's creation or last append: never decreasing (only the last grows)
    stamps: list[int] = field(default_factory=list)
    updated: dict[int, int] = field(default_factory=dict)  # output index -> version of its display update
    meta_at: int = 0  # the version that set `code` and `execution_count`
    changes: int = 0  # bumped on every change: the run's version
    ended_at: float | None = None
    saving: Any = None  # how far savers wrote it (executions.py): forgotten with the run

    @property
    def size(self) -> int:
        """What the run costs the host, about: everything it holds, not only its outputs."""
        return (RUN_COST + len(self.msg_id) + len(self.cell_id or "") + len(self.path or "")
                + len(self.code or "") + self.output_bytes + OUTPUT_COST * len(self.outputs))

    def model(self) -> dict[str, Any]:
        return {"msg_id": self.msg_id, "cell_id": self.cell_id, "path": self.path, "code": self.code,
                "execution_count": self.execution_count, "status": self.status, "reason": self.reason,
                "outputs": self.notebook_outputs()}

    def notebook_outputs(self) -> list[dict[str, Any]]:
        """The outputs as nbformat dicts, each stream with a note of what was cut from it."""
        return [self._shown(output) for output in self.outputs]

    @staticmethod
    def _shown(output: dict[str, Any]) -> dict[str, Any]:
        return {**output, "text": output["text"].value()} if output["output_type"] == "stream" else output

    def bump(self) -> int:
        """A change: the new version."""
        self.changes += 1
        return self.changes

    def set_input(self, code: Any, execution_count: Any) -> None:
        self.code = code if isinstance(code, str) else None
        self.execution_count = execution_count
        self.meta_at = self.bump()

    def clear(self) -> None:
        self.outputs.clear()
        self.sizes.clear()
        self.stamps.clear()
        self.updated.clear()
        self.displays.clear()
        self.output_bytes = 0
        self.clear_pending = False

    def end(self, status: str, reason: str) -> None:
        """The run ends without its kernel's word: the kernel died or was restarted mid-run."""
        self.status, self.reason = status, reason
        self.clear_pending = False
        self.ended_at = time.monotonic()
        self.bump()

    def _append(self, output: dict[str, Any], version: int) -> None:
        self.outputs.append(output)
        self.sizes.append(0)
        self.stamps.append(version)

    def _resize(self, index: int) -> None:
        size = measure(self.outputs[index])
        self.output_bytes += size - self.sizes[index]
        self.sizes[index] = size

    def _stream(self, name: str, max_stream: int, version: int) -> StreamText:
        """The stream output `name` text goes to: the last output, or a new one after it."""
        last = self.outputs[-1] if self.outputs else None
        if last is None or last["output_type"] != "stream" or last["name"] != name:
            last = {"output_type": "stream", "name": name, "text": StreamText(max_stream, born=version)}
            self._append(last, version)
        self.stamps[-1] = version
        return last["text"]

    def add(self, output: dict[str, Any], display_id: str | None, max_stream: int) -> None:
        if self.clear_pending:
            self.clear()
        version = self.bump()
        if output["output_type"] == "stream":
            self._stream(output["name"], max_stream, version).write(output["text"])
        else:
            self._append(output, version)
            if display_id:
                self.displays.setdefault(display_id, []).append(len(self.outputs) - 1)
        self._resize(len(self.outputs) - 1)

    def add_stream(self, name: str, content: bytes, max_stream: int) -> None:
        """A stream message, by its raw content JSON (parsed when read)."""
        if self.clear_pending:
            self.clear()
        self._stream(name, max_stream, self.bump()).write_raw(content)
        self._resize(len(self.outputs) - 1)

    def update_display(self, display_id: str, content: dict[str, Any]) -> bool:
        indexes = self.displays.get(display_id, [])
        if not indexes:
            return False
        version = self.bump()
        for index in indexes:
            self.outputs[index]["data"] = content.get("data", {})
            self.outputs[index]["metadata"] = content.get("metadata", {})
            self._resize(index)
            self.updated[index] = version
        return True

    def cursor(self) -> dict[str, Any]:
        """What a follower that has the run as it stands holds, for `delta` to start from."""
        cursor: dict[str, Any] = {"version": self.changes, "count": len(self.outputs), "stream": None}
        if self.outputs and self.outputs[-1]["output_type"] == "stream":
            text = self.outputs[-1]["text"]
            length = len(text.value())  # folded first: the note may change
            cursor["stream"] = [len(self.outputs) - 1, text.born, text.note(), length]
        return cursor

    def delta(self, known: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """What changed since the follower's view `known` (a cursor from `cursor` or `delta`),
        and its new cursor. `count` is how many outputs there are now (a clear shrinks the
        list); `outputs` has the ones that changed, by index: whole, or, for the stream the
        follower had last and that only grew since (nothing was cut from its start), as `text`
        to put after its first `keep` characters. Carriage returns rewrite the current line
        only, so what precedes the follower's last line is still there as it was. Scalar fields
        come along; `code` only when it changed. Costs what changed, not what the run holds."""
        since = int(known["version"])
        changed = set(range(bisect.bisect_right(self.stamps, since), len(self.outputs)))
        changed.update(index for index, version in self.updated.items() if version > since)
        followed = known.get("stream")
        entries: list[dict[str, Any]] = []
        for index in sorted(changed):
            output = self.outputs[index]
            if output["output_type"] != "stream":
                entries.append({"index": index, "output": output})
                continue
            text = output["text"]
            value = text.value()
            if followed and followed[:3] == [index, text.born, text.note()] and len(value) >= followed[3]:
                keep = value.rfind("\n", 0, followed[3]) + 1
                entries.append({"index": index, "keep": keep, "text": value[keep:]})
            else:
                entries.append({"index": index, "output": {**output, "text": value}})
        change = {"status": self.status, "reason": self.reason, "execution_count": self.execution_count,
                  "count": len(self.outputs), "outputs": entries}
        if self.meta_at > since:
            change["code"] = self.code
        cursor = self.cursor() if changed else {**known, "version": self.changes, "count": len(self.outputs)}
        return change, cursor


class Recording:
    """The executions of one kernel, newest last, looked up by the execute request's msg_id.

    `size` is the sum of their `size`s, kept up to date as they change (O(1) per message)."""

    def __init__(self, max_bytes: int, max_age: float, max_stream: int) -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.max_stream = max_stream
        self.executions: OrderedDict[str, Execution] = OrderedDict()
        # the ended ones, in the order they ended: what trim lets go first (skipping the
        # running ones at the front of `executions` cost each message a pass over them)
        self.finished: OrderedDict[str, Execution] = OrderedDict()
        self.dropped = 0  # executions forgotten to keep within the bounds
        self.size = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.max_age > 0

    def _new(self, msg_id: str) -> Execution:
        execution = self.executions[msg_id] = Execution(msg_id)
        self.size += execution.size
        return execution

    def expect(self, msg_id: str, cell_id: str | None, path: str | None) -> Execution:
        """An execute request is on its way to the kernel: where its outputs belong."""
        execution = self.executions.get(msg_id) or self._new(msg_id)
        before = execution.size
        execution.cell_id = cell_id or execution.cell_id
        execution.path = path or execution.path
        self.size += execution.size - before
        self.trim()
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
            execution = self._new(parent_id)
        before = execution.size
        if msg_type == "execute_input":
            execution.set_input(content.get("code"), content.get("execution_count"))
        elif msg_type == "clear_output":
            if content.get("wait"):
                execution.clear_pending = True
            else:
                execution.clear()
                execution.bump()
        elif msg_type == "status" and content.get("execution_state") == "idle":
            if execution.status == "running":
                execution.status = "ok"
            execution.ended_at = time.monotonic()
            execution.bump()
            self._finished(execution)
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
        if (execution is not None and status in ("ok", "error", "aborted") and execution.status != status
                and execution.reason is None):  # a run ended for its kernel's death stays so
            execution.status = status  # a new version only if it says something new
            execution.bump()

    def end_running(self, status: str, reason: str) -> list[Execution]:
        """The kernel died or was restarted: every run still going ends with `status` (error or
        aborted) and `reason`, since no reply or idle status will ever come for it."""
        ended = [execution for execution in self.executions.values() if execution.ended_at is None]
        for execution in ended:
            execution.end(status, reason)
            self._finished(execution)
        self.trim()
        return ended

    def _finished(self, execution: Execution) -> None:
        self.finished[execution.msg_id] = execution
        self.finished.move_to_end(execution.msg_id)

    def _update_display(self, display_id: str, content: dict[str, Any]) -> Execution | None:
        changed = None
        for execution in self.executions.values():
            before = execution.size
            if display_id and execution.update_display(display_id, content):
                self.size += execution.size - before
                changed = execution
        return changed

    def trim(self) -> None:
        """Forget the ended executions that ended first while past the bounds (a running one is
        never dropped): amortised O(1) per message, each run is let go once."""
        oldest = time.monotonic() - self.max_age
        while self.finished:
            msg_id, execution = next(iter(self.finished.items()))
            if self.size <= self.max_bytes and execution.ended_at >= oldest:  # type: ignore[operator]
                break
            del self.finished[msg_id]
            del self.executions[msg_id]
            self.size -= execution.size
            self.dropped += 1

    def running(self) -> list[Execution]:
        return [execution for execution in self.executions.values() if execution.ended_at is None]
