"""The host's own iopub subscription to each kernel: replay, state, activity and the recording.

Every message a kernel publishes is kept in its replay buffer for sessions that come back;
status messages give its execution state and mark it as answering; and what changes a cell's
outputs is applied to the kernel's recording of its runs (outputs.py, recording.py), which
outlives every client. Listeners (`OutputListener`) hear of every run that changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import zmq

from ..protocol import wire, zmqlib
from .kernel import Kernel
from .outputs import Execution

log = logging.getLogger(__name__)

RECORDED = frozenset({"execute_input", "stream", "display_data", "execute_result", "error", "clear_output",
                      "update_display_data", "status"})  # iopub messages that change a cell's outputs

OutputListener = Callable[[Kernel, Execution], None]  # told of a recorded run that changed


def follow(kernel: Kernel, listeners: list[OutputListener]) -> None:
    """Keeps every iopub message for replay, and follows status messages for state and
    activity, until killed. Only those are verified here: replayed messages are verified by
    the relay that passes them on, like live ones."""
    sub = zmqlib.socket(zmq.SUB, connect=kernel.url("iopub"), RCVHWM=0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        for frames in zmqlib.messages(sub):
            kernel.iopub_seen.set()
            try:
                _, signature, parts = wire.split(frames)
                head = wire.loads_object(parts[0], "header")
                kernel.touch()
                kernel.replay.append(str(head.get("msg_id")), frames)
                msg_type = str(head.get("msg_type"))
                if msg_type == "status":
                    kernel.signer.verify(signature, parts)
                    state = wire.loads_object(parts[3], "content").get("execution_state")
                    # a kernel's own `starting` may come after its kernel_info reply was seen,
                    # and a dead kernel's last statuses after it was declared dead
                    late = kernel.execution_state == "dead" or (
                        state == "starting" and kernel.settled.is_set())
                    if isinstance(state, str) and not late:
                        kernel.execution_state = state
                    if state in ("busy", "idle"):
                        kernel.answering.set()
                _record(kernel, msg_type, signature, parts, listeners)
            except wire.WireError as exc:
                log.warning("kernel %s: dropped an iopub message: %s", kernel.kernel_id, exc)
    finally:
        sub.close()


def _record(kernel: Kernel, msg_type: str, signature: bytes, parts: list[bytes],
            listeners: list[OutputListener]) -> None:
    """Apply an iopub message to the kernel's recording: outputs outlive every client."""
    if not kernel.recording.enabled or msg_type not in RECORDED:
        return
    parent = wire.loads_object(parts[1], "parent_header").get("msg_id")
    parent = parent if isinstance(parent, str) else None
    if (msg_type not in ("execute_input", "update_display_data")
            and parent not in kernel.recording.executions):
        return  # not a cell run: kernel_info, completions, comm traffic
    if msg_type == "stream":  # plain text: unsigned would be harmless, and it is the bulk
        execution = kernel.recording.apply_stream(parent, bytes(parts[3]))
    else:
        if msg_type != "status":
            kernel.signer.verify(signature, parts)  # only signed rich outputs go into a notebook
        execution = kernel.recording.apply(msg_type, parent, wire.loads_object(parts[3], "content"))
    if execution is not None:
        for listener in listeners:
            listener(kernel, execution)


def end_runs(kernel: Kernel, status: str, reason: str, listeners: list[OutputListener]) -> None:
    """The kernel's process ends under its runs: they end too (their reply and idle status
    will never come), so followers learn at once instead of waiting forever."""
    for execution in kernel.recording.end_running(status, reason):
        for listener in listeners:
            listener(kernel, execution)


def expect_run(kernel: Kernel, cell_id: str | None, header: bytes) -> None:
    """A client sent an execute request (the header given) from notebook cell `cell_id`:
    its outputs are recorded for that cell."""
    if not kernel.recording.enabled:
        return
    try:
        msg_id = wire.loads_object(header, "header").get("msg_id")
    except wire.WireError:
        return
    if isinstance(msg_id, str):
        kernel.recording.expect(msg_id, cell_id if isinstance(cell_id, str) else None, None)
