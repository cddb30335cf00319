"""Every operation a web worker may ask of the kernel host, declared once: `HostAPI`, `HostNotices`.

`HostAPI` declares the requests (the host answers each), `HostNotices` the notices (sent without
waiting, never answered): one method each, whose signature types the arguments and the result,
whose docstring says what it does, and whose `@operation(...)` lists the errors it may answer
with and how long the client waits. Both processes are made from these declarations
(nbflask.protocol.operations says how, and what goes on the wire):

- the host's `HostServer` (nbflask.host.server) subclasses them and implements every method
  under its declared name and signature, checked as its class is made; it answers declared
  operations only, their arguments bound to the declared parameters;
- the worker's `HostClient` (nbflask.host_client) subclasses `HostAPI`: each method it does not
  write itself is made to send its operation and decode the answer.

So an editor goes from a call on the client to the declaration here, and from the declaration
to its implementation in `HostServer` ("go to implementation").
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .operations import HostError, RawFrame, RawFrames, WorkerPid, declared, notice, operation
from .terminals import FULL, INPUT_WAIT

# The errors an operation declares it may answer with (`@operation(...)`):
NO_SUCH_KERNEL = HostError(404, None, "no kernel has this id (or the run, session or terminal is unknown)")
KERNEL_DEAD = HostError(409, "KernelDead", "the kernel's process is not running")
INVALID_KERNEL_ID = HostError(400, "InvalidKernelId", "a client's kernel id does not look like a UUID")
NO_SUCH_KERNELSPEC = HostError(404, "NoSuchKernel", "no kernelspec has this name")
KERNEL_ID_IN_USE = HostError(409, "KernelIdInUse", "a kernel with this id is starting or stopping")
KERNEL_START_FAILED = HostError(500, "KernelStartFailed", "the kernel's process could not start or died")
KERNEL_START_TIMEOUT = HostError(504, "KernelStartTimeout", "a restarted kernel did not answer in time")
RECORDING_OFF = HostError(409, "RecordingOff", "kernels.recording_bytes or recording_age is 0")
KERNEL_NOT_RUNNING = HostError(409, "KernelNotRunning", "the kernel is dead, or still not started")
KERNELSPEC_UNAVAILABLE = HostError(501, "NoSuchKernel", "a session asks for a kernelspec there is none of")
SESSION_KERNEL_MISSING = HostError(400, "NoSuchKernel", "a session is moved to a kernel that does not run")
INVALID_TERMINAL_NAME = HostError(400, "InvalidTerminalName", "not 1 to 64 letters, digits or '_'")
BAD_TERMINAL_ARGUMENT = HostError(400, "Bad Request", "a terminal's cwd, input or size is of the wrong type")
TERMINAL_START_FAILED = HostError(500, "TerminalStartFailed", "the shell could not be run")
INPUT_TOO_LARGE = HostError(413, "Payload Too Large", "a piece of input larger than the terminal's queue")
CONNECTION_REPLACED = HostError(409, "ConnectionReplaced",
                                "a newer connection of the session replaced this one before its replay")
INPUT_NOT_TAKEN = HostError(503, FULL, f"the program took none of its input for {INPUT_WAIT:g} s")
# Any operation may also answer these:
BAD_HOST_REQUEST = HostError(400, "BadHostRequest", "no such operation, or arguments that do not fit it")
HOST_GONE = HostError(503, "KernelHostGone", "the kernel host is not running, or died answering")
HOST_TIMEOUT = HostError(503, "KernelHostTimeout", "the kernel host did not answer in time")
HOST_FAILED = HostError(503, "KernelHostFailed", "the kernel host could not be started")
# ... and 500, with the exception's class as the reason, for a bug in the host.


class Missed(NamedTuple):
    """What a session missed while it had no connection, for its new one (`replay`)."""

    messages: list[list[bytes]]  # iopub messages, each as the kernel's frames, in order
    seen: str | None  # the id of the last iopub message the session had seen
    dropped: int  # older iopub messages the buffer's bounds dropped
    replies: list[tuple[str, list[bytes]]]  # (channel, frames) of replies kept for it

    def to_wire(self) -> tuple[dict[str, Any], list[bytes]]:
        """The reply's JSON (how many frames each message and reply has) and all their frames."""
        frames = [frame for message in self.messages for frame in message]
        frames += [frame for _, reply in self.replies for frame in reply]
        return {"counts": [len(message) for message in self.messages], "seen": self.seen,
                "dropped": self.dropped, "replies": [[channel, len(reply)] for channel, reply in self.replies]
                }, frames

    @classmethod
    def from_wire(cls, value: dict[str, Any], frames: list[bytes]) -> Missed:
        messages = []
        for count in value["counts"]:
            messages.append(frames[:count])
            frames = frames[count:]
        replies = []
        for channel, count in value["replies"]:
            replies.append((channel, frames[:count]))
            frames = frames[count:]
        return cls(messages, value["seen"], value["dropped"], replies)


class HostAPI:
    """The requests a web worker makes of the kernel host; `HostServer` answers them,
    `HostClient` sends them. Errors are those of the `@operation` and BAD_HOST_REQUEST,
    HOST_GONE, HOST_TIMEOUT, HOST_FAILED."""

    # Kernels -------------------------------------------------------------------------------

    @operation()
    def list_kernels(self) -> list[dict[str, Any]]:
        """The models of the running kernels (GET /api/kernels)."""

    @operation(INVALID_KERNEL_ID, NO_SUCH_KERNELSPEC, KERNEL_ID_IN_USE, KERNEL_START_FAILED,
               timeout=15.0, plus_kernel_start=True)
    def start_kernel(self, name: str | None = None, path: str | None = None,
                     kernel_id: str | None = None) -> dict[str, Any]:
        """A new kernel of kernelspec `name` (default: kernels.default) for notebook `path`,
        under id `kernel_id` if the client chose one (that kernel if it runs): its model, as
        soon as its process runs; it becomes ready in the background."""

    @operation(NO_SUCH_KERNEL)
    def get_kernel(self, kernel_id: str) -> dict[str, Any]:
        """The kernel's model: id, name, execution state, activity, connections."""

    @operation(NO_SUCH_KERNEL, timeout=15.0, plus_kernel_start=True)
    def shutdown_kernel(self, kernel_id: str) -> None:
        """Stop the kernel, end its runs, and tell its websockets (event `shutdown`)."""

    @operation(NO_SUCH_KERNEL, KERNEL_DEAD, plus_kernel_start=True)  # the host awaits a starting kernel
    def interrupt_kernel(self, kernel_id: str) -> None:
        """Interrupt what the kernel runs: SIGINT to its process group, or an interrupt_request
        on its control channel if its kernelspec's interrupt_mode is `message`. A kernel still
        starting is awaited first (SIGINT would kill it)."""

    @operation(NO_SUCH_KERNEL, KERNEL_START_FAILED, KERNEL_START_TIMEOUT,
               timeout=15.0, plus_kernel_start=True)
    def restart_kernel(self, kernel_id: str) -> dict[str, Any]:
        """Restart the kernel's process under the same id and ports; its model once it answers."""

    @operation(NO_SUCH_KERNEL)
    def connection_info(self, kernel_id: str) -> dict[str, Any]:
        """The kernel's ports, transport and key, and the host's pid (`nbflask_host`), for a relay."""

    # Websocket connections -----------------------------------------------------------------

    @operation(NO_SUCH_KERNEL)
    def attach(self, kernel_id: str, connection_id: str, session_id: str, worker: WorkerPid = 0) -> None:
        """Register websocket `connection_id` of session `session_id`; an older one of the same
        session is told to go (event `replaced`), and the session's replay waits for it."""

    @operation(NO_SUCH_KERNEL, plus_argument="timeout")
    def wait_settled(self, kernel_id: str, timeout: float) -> bool:
        """Whether the kernel has started (or failed to), waiting at most `timeout` seconds: a
        relay passes requests on only then, so the host records all of their output."""

    @operation()
    def hello(self, topic: str, connection_id: str) -> None:
        """Publish a `hello` event on `topic`: a subscriber that sees it misses nothing published
        on that topic after it."""

    @operation()
    def detach(self, kernel_id: str, connection_id: str, last_msg_id: str | None = None) -> None:
        """A websocket went away; `last_msg_id`, the last iopub message it delivered, is where its
        session's replay starts."""

    @operation()
    def park(self, kernel_id: str, session_id: str, channel: str, frames: RawFrames) -> None:
        """A reply the kernel sent on `channel` to a connection of session `session_id` that is
        gone: the session's connection gets it, now (event `reply`) or when it is back (replay)."""

    @operation(NO_SUCH_KERNEL, CONNECTION_REPLACED)
    def replay(self, kernel_id: str, session_id: str, connection_id: str,
               first_live: str | None = None) -> Missed:
        """What session `session_id` missed while away, up to its new connection's first live
        iopub message `first_live`, and the replies kept for it."""

    # Cell runs -----------------------------------------------------------------------------

    @operation(NO_SUCH_KERNEL, RECORDING_OFF, KERNEL_NOT_RUNNING, timeout=15.0, plus_kernel_start=True)
    def run_code(self, kernel_id: str, code: str, cell_id: str | None = None,
                 path: str | None = None) -> dict[str, Any]:
        """Execute `code` (from cell `cell_id` of notebook `path`); the run's model, recorded by
        the host whoever follows it."""

    @operation(NO_SUCH_KERNEL)
    def get_run(self, kernel_id: str, run_id: str) -> dict[str, Any]:
        """A recorded run's model: its outputs, status, version."""

    @operation(NO_SUCH_KERNEL)
    def list_runs(self, kernel_id: str, cell_id: str | None = None) -> list[dict[str, Any]]:
        """The runs the host still holds, oldest first; those of one cell if `cell_id` is given."""

    @operation(NO_SUCH_KERNEL, plus_argument="timeout")
    def follow_run(self, kernel_id: str, run_id: str, known: dict[str, Any] | None, after: int,
                   timeout: float) -> dict[str, Any]:
        """The run's next step for a follower holding cursor `known` (None: the whole run if it
        is newer than version `after`), once it changed or after `timeout` seconds."""

    @operation()
    def runs_to_save(self, interval: float, worker: WorkerPid = 0) -> list[dict[str, Any]]:
        """Runs the worker should write into their notebooks now (no page has them open),
        leased to it; a running one every `interval` seconds."""

    @operation()
    def run_saved(self, kernel_id: str, run_id: str, version: int, worker: WorkerPid = 0) -> None:
        """The worker wrote version `version` of a run (or found nothing to write)."""

    # Sessions ------------------------------------------------------------------------------

    @operation()
    def list_sessions(self) -> list[dict[str, Any]]:
        """The session models (GET /api/sessions)."""

    @operation(NO_SUCH_KERNEL)
    def get_session(self, session_id: str) -> dict[str, Any]:
        """A session's model, with its kernel's."""

    @operation(KERNELSPEC_UNAVAILABLE, INVALID_KERNEL_ID, KERNEL_ID_IN_USE, KERNEL_START_FAILED,
               timeout=15.0, plus_kernel_start=True)
    def create_session(self, path: str, name: str, type: str, kernel: dict[str, Any]) -> dict[str, Any]:
        """The session of `path` if it has one, else a new one on the running kernel
        `kernel["id"]` or on a new kernel of kernelspec `kernel["name"]`."""

    @operation(NO_SUCH_KERNEL, SESSION_KERNEL_MISSING, KERNELSPEC_UNAVAILABLE, KERNEL_START_FAILED,
               timeout=15.0, plus_kernel_start=True)
    def update_session(self, session_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Rename or retype a session, or move it to another kernel (the old one is shut down
        unless another session uses it)."""

    @operation(NO_SUCH_KERNEL, timeout=15.0, plus_kernel_start=True)
    def delete_session(self, session_id: str) -> None:
        """End a session, and shut its kernel down unless another session uses it."""

    # Terminals -----------------------------------------------------------------------------

    @operation()
    def list_terminals(self) -> list[dict[str, Any]]:
        """The terminal models (GET /api/terminals)."""

    @operation(INVALID_TERMINAL_NAME, BAD_TERMINAL_ARGUMENT, TERMINAL_START_FAILED)
    def create_terminal(self, name: str | None = None, cwd: str | None = None) -> dict[str, Any]:
        """A new terminal named `name` (default: the smallest free number) started in `cwd`;
        the running one if it has that name."""

    @operation(NO_SUCH_KERNEL)
    def get_terminal(self, name: str) -> dict[str, Any]:
        """A terminal's model."""

    @operation(NO_SUCH_KERNEL, timeout=20.0)
    def delete_terminal(self, name: str) -> None:
        """End the terminal: SIGHUP to its session, then SIGKILL; its pages are told `disconnect`."""

    @operation(NO_SUCH_KERNEL)
    def terminal_attach(self, name: str, connection_id: str, worker: WorkerPid = 0) -> dict[str, Any]:
        """Register a page's websocket: `{"scrollback": recent output, "seq": its last chunk}`."""

    @operation()
    def terminal_detach(self, name: str, connection_id: str) -> None:
        """A page's websocket went away: its size no longer counts."""

    @operation(NO_SUCH_KERNEL, BAD_TERMINAL_ARGUMENT, INPUT_TOO_LARGE, INPUT_NOT_TAKEN,
               timeout=INPUT_WAIT + 10)
    def terminal_input(self, name: str, data: str) -> None:
        """Queue input for the terminal's program; the host waits up to INPUT_WAIT for room."""

    @operation(NO_SUCH_KERNEL, BAD_TERMINAL_ARGUMENT)
    def terminal_resize(self, name: str, connection_id: str, rows: int, cols: int) -> None:
        """A page's size; the pty takes the smallest of its pages' sizes."""

    # Server --------------------------------------------------------------------------------

    @operation(timeout=5.0)
    def counts(self) -> dict[str, Any]:
        """How many kernels and websockets there are, and the latest kernel activity (/api/status)."""


class HostNotices:
    """What a web worker tells the kernel host without waiting for an answer, on a socket of its
    own (`HostClient.progress_socket`): the client's methods take that socket first."""

    @notice
    def progress(self, kernel_id: str, connection_ids: list[str], header: RawFrame) -> None:
        """The websockets delivered the iopub message with this header: should their worker die,
        their sessions resume from there."""

    @notice
    def executing(self, kernel_id: str, cell_id: str | None, header: RawFrame) -> None:
        """A websocket sent the execute request with this header for notebook cell `cell_id`:
        its outputs are recorded for that cell."""


OPERATIONS = declared(HostAPI)
NOTICES = declared(HostNotices)
