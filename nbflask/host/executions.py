"""Cell runs as the kernel host knows them: for scripts, and for clients behind proxies that
break websockets.

`run` sends code to a kernel from the host itself (its own shell socket, so the run belongs to
no web worker and no websocket) and answers at once with the run's id; its outputs are recorded
like every run's (see recording.py). `follow` is a long poll: it answers when a run changed after
the version the caller already has, with what changed since (the whole run the first time), so
a server-sent events stream costs one request per change and sends what the run printed once.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event
import zmq

from .. import runtime
from ..api_error import APIError
from ..protocol import wire, zmqlib
from .kernel import Kernel
from .manager import KernelManager
from .outputs import Execution
from .sessions import SessionRegistry

log = logging.getLogger(__name__)

REPLY_POLL = 1.0  # seconds between checks that a kernel awaited for a reply still lives
SETTLE_WAIT = 60.0  # a run sent to a kernel that is starting waits this long for it
LEASE = 30.0  # seconds a web worker has to save the runs it was handed before another may


@dataclass(slots=True)
class Saving:
    """How far a run has been written into its notebook, and who is writing it now."""

    version: int = -1
    at: float = 0.0
    worker: int = 0
    leased_at: float = 0.0


class Executions:
    def __init__(self, kernels: KernelManager, sessions: SessionRegistry) -> None:
        self.kernels = kernels
        self.sessions = sessions
        self.session = uuid.uuid4().hex
        self.changed: dict[tuple[str, str], gevent.event.Event] = {}
        kernels.on_output.append(self._wake)
        kernels.on_shutdown.append(self._forget_kernel)

    def run(self, kernel_id: str, code: str, cell_id: str | None = None,
            path: str | None = None) -> dict[str, Any]:
        kernel = self.kernels.get(kernel_id)
        if not kernel.recording.enabled:
            raise APIError(409, "this server keeps no recording of cell runs (kernels.recording_bytes"
                                " or kernels.recording_age is 0)", "RecordingOff")
        if not kernel.settled.wait(SETTLE_WAIT) or kernel.execution_state == "dead":
            why = kernel.reason or kernel.execution_state
            raise APIError(409, f"kernel {kernel_id} is not running: {why}", "KernelNotRunning")
        request = wire.new_message("execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True}, session=self.session)
        request.metadata = {"cellId": cell_id} if cell_id else {}
        execution = kernel.recording.expect(request.msg_id, cell_id, path)
        gevent.spawn(self._send_and_await, kernel, request)
        return self.model(kernel, execution)

    def _send_and_await(self, kernel: Kernel, request: wire.Message) -> None:
        """The run's execute_reply carries its final status (`aborted` has no other sign)."""
        shell = zmqlib.socket(zmq.DEALER, connect=kernel.url("shell"))
        try:
            shell.send_multipart(kernel.signer.serialize(request))
            while self._awaited(kernel, request.msg_id):
                if not zmqlib.poll(shell, REPLY_POLL * 1000):
                    continue
                _, signature, parts = wire.split(shell.recv_multipart())
                kernel.signer.verify(signature, parts)
                if wire.loads_object(parts[1], "parent_header").get("msg_id") != request.msg_id:
                    continue
                status = wire.loads_object(parts[3], "content").get("status")
                kernel.recording.finish(request.msg_id, str(status))
                execution = kernel.recording.executions.get(request.msg_id)
                if execution is not None:
                    self._wake(kernel, execution)
                return
        except wire.WireError as exc:
            log.warning("kernel %s: unusable reply to a REST run: %s", kernel.kernel_id, exc)
        finally:
            shell.close()

    def _awaited(self, kernel: Kernel, msg_id: str) -> bool:
        """Whether a reply may still come: the kernel is there and the run has not ended for
        its death or restart (the new process knows nothing of it)."""
        execution = kernel.recording.executions.get(msg_id)
        return (self.kernels.kernels.get(kernel.kernel_id) is kernel and execution is not None
                and execution.reason is None)

    def get(self, kernel_id: str, run_id: str) -> dict[str, Any]:
        kernel = self.kernels.get(kernel_id)
        return self.model(kernel, self._execution(kernel, run_id))

    def list(self, kernel_id: str, cell_id: str | None = None) -> list[dict[str, Any]]:
        """The runs the host still holds, oldest first; those of one cell if `cell_id` is given."""
        kernel = self.kernels.get(kernel_id)
        return [self.model(kernel, execution) for execution in list(kernel.recording.executions.values())
                if cell_id is None or execution.cell_id == cell_id]

    def follow(self, kernel_id: str, run_id: str, known: dict[str, Any] | None = None, after: int = -1,
               timeout: float = 15.0) -> dict[str, Any]:
        """The run's next step for a follower, once it changed after the follower's version (at
        once if it has), or after `timeout` s: `{"version", "done", "status", "reason",
        "event", "data", "cursor"}`. `event` is `run` (`data` the whole run) for a follower
        that has no cursor yet, `change` (`data` what changed since its cursor, see
        `Execution.delta`) for one that has, and None when nothing changed. The follower
        passes `cursor` back with its next call; `after` is the version of a follower that
        resumes with no cursor (it gets the whole run if anything is newer)."""
        kernel = self.kernels.get(kernel_id)
        execution = self._execution(kernel, run_id)
        since = int(known["version"]) if known else after
        deadline = time.monotonic() + min(max(timeout, 0.0), 60.0)
        while execution.changes <= since and not self._ended(kernel, execution):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            event = self.changed.setdefault((kernel_id, run_id), gevent.event.Event())
            event.wait(min(left, REPLY_POLL))
        step: dict[str, Any] = {"version": execution.changes, "status": execution.status,
                                "reason": execution.reason, "done": self._ended(kernel, execution),
                                "event": None, "data": None, "cursor": known}
        if execution.changes <= since:
            return step
        if known is None:
            step.update(event="run", data=self.model(kernel, execution), cursor=execution.cursor())
        else:
            change, cursor = execution.delta(known)
            step.update(event="change", data={**change, **self._state(kernel, execution)}, cursor=cursor)
        return step

    def _ended(self, kernel: Kernel, execution: Execution) -> bool:
        return execution.ended_at is not None or self.kernels.kernels.get(kernel.kernel_id) is not kernel

    def model(self, kernel: Kernel, execution: Execution) -> dict[str, Any]:
        return {**execution.model(), "id": execution.msg_id, "kernel_id": kernel.kernel_id,
                **self._state(kernel, execution)}

    def _state(self, kernel: Kernel, execution: Execution) -> dict[str, Any]:
        """What a run's model says beyond the run itself: its version, whether it is over, its
        kernel's state, how many older runs the recording let go."""
        gone = self.kernels.kernels.get(kernel.kernel_id) is not kernel
        return {"version": execution.changes, "done": execution.ended_at is not None or gone,
                "kernel_state": "dead" if gone else kernel.execution_state,
                "dropped": kernel.recording.dropped}

    @staticmethod
    def _execution(kernel: Kernel, run_id: str) -> Execution:
        execution = kernel.recording.executions.get(run_id)
        if execution is None:
            raise APIError(404, f"No run {run_id} on kernel {kernel.kernel_id} (unknown, or dropped from"
                                " its recording: kernels.recording_bytes / recording_age)")
        return execution

    def _wake(self, kernel: Kernel, execution: Execution) -> None:
        event = self.changed.pop((kernel.kernel_id, execution.msg_id), None)
        if event is not None:
            event.set()

    def _forget_kernel(self, kernel_id: str) -> None:
        for key in [key for key in self.changed if key[0] == kernel_id]:
            self.changed.pop(key).set()

    # Saving into notebooks -----------------------------------------------------------------

    def to_save(self, worker: int, interval: float) -> list[dict[str, Any]]:
        """Runs web worker `worker` should now write into their notebooks, leased to it: those
        of cells in notebooks no client has open (no websocket on the kernel; a page that has
        it open saves it itself), changed since last written, once ended or every `interval`
        seconds while running. Only a cell's newest run counts: a rerun replaces it."""
        now = time.monotonic()
        due = []
        for kernel in list(self.kernels.kernels.values()):
            if kernel.connections:
                continue
            paths = self.sessions.paths_of(kernel.kernel_id)
            newest: dict[str, Execution] = {}
            for execution in list(kernel.recording.executions.values()):
                if execution.cell_id:
                    newest[execution.cell_id] = execution
            for execution in newest.values():
                saving = execution.saving = execution.saving or Saving()
                if execution.changes <= saving.version:
                    continue
                if execution.ended_at is None and now - saving.at < interval:
                    continue
                if (saving.worker not in (0, worker) and now - saving.leased_at < LEASE
                        and runtime.pid_alive(saving.worker)):
                    continue  # another worker is writing it
                saving.worker, saving.leased_at = worker, now
                run = self.model(kernel, execution)
                run["paths"] = [execution.path] if execution.path else paths
                due.append(run)
        return due

    def saved(self, kernel_id: str, run_id: str, version: int, worker: int) -> None:
        """Worker `worker` wrote version `version` of a run (or found nothing to write)."""
        kernel = self.kernels.kernels.get(kernel_id)
        execution = kernel.recording.executions.get(run_id) if kernel is not None else None
        saving = execution.saving if execution is not None else None
        if saving is None or saving.worker != worker:
            return
        saving.version = max(saving.version, version)
        saving.at = time.monotonic()
        saving.worker = 0
