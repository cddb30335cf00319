"""Each kernel's recording of its runs: outputs that survive every browser and web worker.

The kernel host keeps one Recording per kernel and applies to it the iopub messages that
change a cell's outputs (iopub_monitor.py): the result is a list of nbformat output dicts per
execute request, ready to be written into the stored notebook. `update_display_data` is
applied to every output showing that display id, in any cell. A recording is bounded:
executions are forgotten oldest first once it holds more than `max_bytes` or they ended more
than `max_age` seconds ago.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any

from .outputs import Execution, output_of
from .streams import STREAM_START


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
