"""One cell run's outputs, as a front-end shows them once its iopub messages are applied.

An `Execution` holds nbformat output dicts: stream text merged per stream (streams.py),
`clear_output` (at once, or with `wait` when the next output comes), display updates. Each
change gets a version; `Execution.delta` tells a follower what changed since the version it
has (new or changed outputs, text appended to a stream), so following a run costs what it
printed, not the square of it. What a run costs is counted whole (its code, ids and the
host's own records of it, not only its outputs): thousands of runs that print nothing must
not outgrow a recording's bound either (recording.py).
"""

from __future__ import annotations

import bisect
import json
import time
from dataclasses import dataclass, field
from typing import Any

from .streams import StreamText


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
