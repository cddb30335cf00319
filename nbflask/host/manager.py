"""The kernel registry inside the kernel host: processes, restarts, activity and culling.

Runs only in the host process, under gevent (the host patches before importing this), so
waiting on a process or a socket is one greenlet each and never stalls the others. A kernel
keeps its connection file, and so its ports, across restarts: the workers' relays stay
connected and ZeroMQ reconnects them to the new process by itself.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import gevent.lock
import zmq

from .. import runtime
from ..api_error import APIError
from ..clock import isoformat, utcnow
from ..protocol import endpoints, kernelspecs, wire, zmqlib
from ..protocol.kernelspecs import KernelSpec
from .outputs import Execution
from .recording import Recording
from .replay import ReplayBuffer

log = logging.getLogger(__name__)

STABLE_SECONDS = 10  # a kernel that ran this long before dying starts a fresh restart count
HOST_SESSION = "nbflask-kernel-host"
HOST_KEY = "nbflask_host"  # in each connection file: the pid of the host that owns the kernel
SERVICE_KEY = "nbflask_service"  # ... whether that host is the service one (its kernels outlive it)
PID_KEY = "nbflask_kernel_pid"  # ... the kernel's process, which a new service host adopts
CWD_KEY = "nbflask_cwd"  # ... and where it runs
SESSIONS_KEY = "nbflask_sessions"  # ... and the sessions using it (the service host's kernels)
UNKNOWN_EXIT = 256  # the "exit code" of an adopted kernel: no real one is this
ADOPT_TIMEOUT = 10.0  # seconds a kernel left by a dead host has to answer kernel_info
IPC_NAME = "kernel-{}"  # a kernel's unix sockets are <runtime folder>/kernel-<random>-1 ... -5
RECORDED = frozenset({"execute_input", "stream", "display_data", "execute_result", "error", "clear_output",
                      "update_display_data", "status"})  # iopub messages that change a cell's outputs
IOPUB_CONFIRM = 5.0  # seconds a ready kernel waits for the host's iopub subscription to hear it
INTERRUPT_REPLY_WAIT = 1.0  # seconds an interrupt_request is given to be answered
NUDGE_INTERVAL = 0.5  # seconds between kernel_info requests to a kernel becoming ready
RENUDGE_FIRST = 0.01  # seconds after its first answer a kernel is asked again, then twice as long
DEPARTURE_WAIT = 2.0  # seconds a reconnecting session waits for its old connection to report


def describe_exit(returncode: int) -> str:
    """Why a process ended, in words: the exit code, or the signal (and what it usually means)."""
    if returncode == UNKNOWN_EXIT:
        return ("the kernel process ended (it was adopted from an earlier kernel host: its exit code"
                " is unknown)")
    if returncode >= 0:
        return f"the kernel process exited with code {returncode}"
    number = -returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    hint = " (out of memory, or killed by someone)" if number == signal.SIGKILL else ""
    return f"the kernel process was killed by {name} (signal {number}){hint}"


class Adopted:
    """The process of a kernel an earlier host started: not a child of this one, so its end
    is noticed by watching its pid, and its exit code is unknown (UNKNOWN_EXIT). Offers the
    part of `subprocess.Popen` the manager uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not runtime.pid_alive(self.pid):
            self.returncode = UNKNOWN_EXIT
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            gevent.sleep(0.2)
        return self.returncode


@functools.lru_cache(maxsize=1024)
def _signer(key: str) -> wire.Signer:
    """One Signer per kernel key: made per message, it was a twentieth of the host's time."""
    return wire.Signer(key)


@dataclass
class Kernel:
    kernel_id: str
    spec: KernelSpec
    cwd: str
    connection: dict[str, Any]
    connection_file: Path
    replay: ReplayBuffer
    recording: Recording
    process: subprocess.Popen | Adopted | None = None
    execution_state: str = "starting"
    last_activity: datetime = field(default_factory=utcnow)
    connections: dict[str, str] = field(default_factory=dict)  # connection id -> session id
    departing: dict[str, str] = field(default_factory=dict)  # replaced connection id -> session id
    departed: dict[str, Any] = field(default_factory=dict)  # session id -> Event, set on detach
    workers: dict[str, int] = field(default_factory=dict)  # connection id -> pid of its web worker
    delivered: dict[str, int] = field(default_factory=dict)  # connection id -> replay seq it reached
    reason: str | None = None
    restarts: int = 0
    started_at: float = 0.0
    watcher: Any = None
    monitor: Any = None
    lock: Any = field(default_factory=gevent.lock.RLock)
    settled: Any = field(default_factory=gevent.event.Event)  # set once ready or dead after a start
    iopub_seen: Any = field(default_factory=gevent.event.Event)  # the host's monitor hears this process
    answering: Any = field(default_factory=gevent.event.Event)  # it said busy or idle: it takes requests

    def url(self, channel: str) -> str:
        return endpoints.url(self.connection, channel)

    @property
    def signer(self) -> wire.Signer:
        return _signer(self.connection["key"])

    def model(self) -> dict[str, Any]:
        return {
            "id": self.kernel_id,
            "name": self.spec.name,
            "last_activity": isoformat(self.last_activity),
            "execution_state": self.execution_state,
            "connections": len(self.connections),
            "reason": self.reason,
        }

    def touch(self) -> None:
        self.last_activity = utcnow()


class KernelManager:
    """Starts, watches, restarts, interrupts, culls and stops this deployment's kernels."""

    def __init__(self, config: dict[str, Any], publish: Callable[..., None]) -> None:
        self.settings: dict[str, Any] = config["kernels"]
        self.root_dir = config["root_dir"]
        self.file_store = config["store_class"] == "file"
        self.service = bool(config.get("service"))  # kernels outlive this host, for the next to adopt
        self.publish = publish
        self.kernels: dict[str, Kernel] = {}
        self.lost: dict[str, str] = {}  # kernel id -> why it is gone (its host died)
        self.on_shutdown: list[Callable[[str], None]] = []
        self.sessions_of: Callable[[str], list[dict[str, Any]]] = lambda kernel_id: []
        self.adopted_sessions: list[dict[str, Any]] = []  # kept in the files of adopted kernels
        self.on_output: list[Callable[[Kernel, Execution], None]] = []  # a recorded run changed

    # Lookup ------------------------------------------------------------------------------

    def get(self, kernel_id: str) -> Kernel:
        kernel = self.kernels.get(kernel_id)
        if kernel is None:
            lost = f" ({self.lost[kernel_id]})" if kernel_id in self.lost else ""
            raise APIError(404, f"Kernel does not exist: {kernel_id}{lost}")
        return kernel

    def take_over(self) -> None:
        """Deal with the connection files dead kernel hosts left behind, before serving.

        The kernels of an owned host exited with it (ipykernel follows its parent), so each of
        its files names a kernel that is gone. The service host's kernels outlive it: the next
        service host adopts every one that still runs and answers, and reports the others.
        Kernels that are gone are remembered with the reason, so REST answers for those ids
        say so instead of a bare 404; their files and socket files are removed.
        """
        left_behind = []
        for path in runtime.runtime_dir().glob("kernel-*.json"):
            if path.name.startswith("kernel-host-"):
                continue
            try:
                left = json.loads(path.read_text())
                owner = int(left.get(HOST_KEY, 0))
            except (OSError, ValueError, TypeError, AttributeError):
                left, owner = {}, 0
            if owner and (owner == os.getpid() or runtime.pid_alive(owner)):
                continue
            if isinstance(left, dict) and left.get(SERVICE_KEY) and not self.service:
                continue  # waits for the service host, which runs on its own
            left_behind.append((path, left if isinstance(left, dict) else {}, owner))
        greenlets = [gevent.spawn(self._take_over_one, *found) for found in left_behind]
        gevent.joinall(greenlets)

    def _take_over_one(self, path: Path, left: dict[str, Any], owner: int) -> None:
        kernel_id = path.stem.removeprefix("kernel-")
        if left.get(SERVICE_KEY) and self.service:
            reason = self._adopt(kernel_id, path, left, owner)
            if reason is None:
                return
        else:
            reason = f"it was lost when its kernel host (pid {owner}) died"
        if isinstance(left.get("ip"), str) and left.get("transport") == "ipc":
            endpoints.remove_sockets(left)
        self.lost[kernel_id] = reason
        path.unlink(missing_ok=True)
        log.warning("kernel %s: %s; removed %s", kernel_id, reason, path)

    def _adopt(self, kernel_id: str, path: Path, left: dict[str, Any], owner: int) -> str | None:
        """Adopt the running kernel a dead service host left in `path`; None when it is
        adopted, else why it is lost. Its pid must run the kernel of this very connection
        file (a pid may have been reused), and the kernel must answer kernel_info, signed
        with its key, within ADOPT_TIMEOUT."""
        pid = left.get(PID_KEY)
        gone = f"it was lost while no kernel host ran (its host, pid {owner}, died)"
        if not isinstance(pid, int) or not runtime.pid_alive(pid):
            return f"{gone}: its process had exited"
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            command = []
        if str(path).encode() not in command:
            return f"{gone}: its process had exited (pid {pid} runs something else now)"
        connection = {key: value for key, value in left.items() if not key.startswith("nbflask_")}
        try:
            spec = kernelspecs.get(str(connection.get("kernel_name")))
        except kernelspecs.NoSuchKernelSpec:  # it could not be restarted: stop it
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            return f"{gone}: its kernelspec {connection.get('kernel_name')!r} is gone, so it was stopped"
        cwd = left.get(CWD_KEY) if isinstance(left.get(CWD_KEY), str) else self.working_dir(None)
        kernel = Kernel(kernel_id, spec, cwd, connection, path, *self._buffers(), process=Adopted(pid),
                        started_at=time.monotonic())
        kernel.monitor = gevent.spawn(self._monitor_iopub, kernel)
        try:
            self._wait_ready(kernel, ADOPT_TIMEOUT)
            problem = None
        except APIError:
            problem = f"it did not answer kernel_info within {ADOPT_TIMEOUT:g} s"
        except (KeyError, TypeError, ValueError) as exc:  # a damaged file: no key, no ports
            problem = f"its connection file is unusable ({exc})"
        if problem is not None:
            kernel.monitor.kill(block=False)
            self._kill(kernel, kernel.process)
            return f"{gone}: {problem}, so it was stopped"
        kernel.execution_state = "idle"
        kernel.settled.set()
        kernel.watcher = gevent.spawn(self._watch, kernel, kernel.process)
        self.kernels[kernel_id] = kernel
        sessions = left.get(SESSIONS_KEY)
        if isinstance(sessions, list):
            self.adopted_sessions += [{**record, "kernel_id": kernel_id} for record in sessions
                                      if isinstance(record, dict)]
        self._write_connection_file(kernel)
        log.info("kernel %s (pid %d), left by kernel host %d, adopted", kernel_id, pid, owner)
        return None

    def _buffers(self) -> tuple[ReplayBuffer, Recording]:
        """A new kernel's iopub replay buffer and recording of its runs, bounded as configured."""
        return (ReplayBuffer(self.settings["replay_buffer_bytes"], self.settings["replay_buffer_age"]),
                Recording(self.settings["recording_bytes"], self.settings["recording_age"],
                          self.settings["recording_stream_chars"]))

    def _write_connection_file(self, kernel: Kernel) -> None:
        """The kernel's connection file: what the kernel reads, and what a new host needs to
        find it (this host's pid, the kernel's, where it runs)."""
        extra = {HOST_KEY: os.getpid(), SERVICE_KEY: self.service, CWD_KEY: kernel.cwd}
        if kernel.process is not None:
            extra[PID_KEY] = kernel.process.pid
        if self.service:
            extra[SESSIONS_KEY] = self.sessions_of(kernel.kernel_id)
        runtime.write_private(kernel.connection_file, wire.dumps({**kernel.connection, **extra}))

    def record_sessions(self, kernel_id: str) -> None:
        """The service host keeps a kernel's sessions in its connection file, so a host that
        adopts the kernel has them too."""
        kernel = self.kernels.get(kernel_id)
        if self.service and kernel is not None and kernel.connection_file.exists():
            self._write_connection_file(kernel)

    def models(self) -> list[dict[str, Any]]:
        return [kernel.model() for kernel in list(self.kernels.values())]

    def counts(self) -> dict[str, Any]:
        """For /api/status: how many kernels and connections, and the latest kernel activity."""
        latest = max((k.last_activity for k in self.kernels.values()), default=None)
        return {
            "kernels": len(self.kernels),
            "connections": sum(len(k.connections) for k in self.kernels.values()),
            "last_activity": isoformat(latest) if latest else None,
        }

    def connection_info(self, kernel_id: str) -> dict[str, Any]:
        """The kernel's ports and key, and this host's pid (HOST_KEY): a relay knows from the
        start which host's death is its kernel's, even one that dies as it connects."""
        return {**self.get(kernel_id).connection, HOST_KEY: os.getpid()}

    def working_dir(self, path: str | None) -> str:
        """Where a kernel for notebook `path` runs: its folder in a file store, else the root."""
        root = Path(self.root_dir)
        if not root.is_dir():
            return os.getcwd()
        if self.file_store and path:
            folder = (root / os.path.dirname(path.strip("/"))).resolve()
            if folder.is_dir() and (folder == root.resolve() or root.resolve() in folder.parents):
                return str(folder)
        return str(root.resolve())

    # Lifecycle ---------------------------------------------------------------------------

    def start(self, name: str | None = None, path: str | None = None, kernel_id: str | None = None) -> Kernel:
        """A new kernel of kernelspec `name`, under a fresh id or the client's `kernel_id`.

        As in Jupyter Server, asking for the id of a running kernel returns that kernel (its
        spec is not changed). A client's id must look like the ids the API's URLs carry (five
        dash-separated groups of ASCII word characters), since it also names the connection file;
        an id whose connection file exists (starting or stopping now, or another server's) is a 409.
        """
        if kernel_id is not None:
            if (len(kernel_id) > 128 or not re.fullmatch(r"\w+(-\w+){4}", kernel_id, re.ASCII)
                    or kernel_id.startswith("host-")):  # kernel-host-* files are the host's own
                raise APIError(400, f"Invalid kernel id {kernel_id!r}: use five groups of letters, digits"
                                    " or '_' joined by '-', like a UUID", "InvalidKernelId")
            if kernel_id in self.kernels:
                return self.kernels[kernel_id]
        name = name or self.settings["default"]
        try:
            spec = kernelspecs.get(name)
        except kernelspecs.NoSuchKernelSpec:
            raise APIError(404, f"No such kernel: there is no kernelspec named '{name}'",
                            "NoSuchKernel") from None
        kernel_id = kernel_id or str(uuid.uuid4())
        connection = endpoints.new_connection(self.settings["transport"],
                                              runtime.runtime_dir() / IPC_NAME.format(secrets.token_hex(8)))
        connection.update(key=secrets.token_hex(32), signature_scheme="hmac-sha256", kernel_name=spec.name)
        connection_file = runtime.runtime_dir() / f"kernel-{kernel_id}.json"
        if connection_file.exists():
            raise APIError(409, f"Kernel id {kernel_id} is in use: a kernel with that id is starting"
                                " or stopping, or another server of this user runs one", "KernelIdInUse")
        kernel = Kernel(kernel_id, spec, self.working_dir(path), connection, connection_file,
                        *self._buffers())
        self._write_connection_file(kernel)
        try:
            self._spawn(kernel, wait=False)
        except APIError:
            connection_file.unlink(missing_ok=True)
            raise
        self.kernels[kernel_id] = kernel
        self.lost.pop(kernel_id, None)
        kernel.monitor = gevent.spawn(self._monitor_iopub, kernel)
        log.info("kernel %s (%s) started in %s", kernel_id, spec.name, kernel.cwd)
        return kernel

    def _spawn(self, kernel: Kernel, *, wait: bool = True) -> None:
        """Start the kernel's process; on failure leave nothing running.

        With `wait` (restarts, as Jupyter's restart waits), until the kernel answers, raising
        if it does not. Without (a new kernel, as Jupyter answers once the process runs),
        readiness is awaited in the background: the kernel is `starting` meanwhile, then
        `idle`, or `dead` with the reason (told to connected clients like any death).
        """
        # JPY_PARENT_PID: ipykernel exits by itself if the host ever vanishes without stopping
        # it; the service host's kernels outlive it instead, for the next one to adopt.
        env = runtime.child_environment(dict(kernel.spec.env))
        if self.service:
            env.pop("JPY_PARENT_PID", None)
        else:
            env["JPY_PARENT_PID"] = str(os.getpid())
        command = kernel.spec.command(str(kernel.connection_file))
        kernel.execution_state = "starting"
        try:
            process = subprocess.Popen(command, env=env, cwd=kernel.cwd, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        except OSError as exc:
            kernel.execution_state, kernel.reason = "dead", f"cannot run {command[0]}: {exc.strerror}"
            raise APIError(500, f"Kernel '{kernel.spec.name}' could not start: {kernel.reason}",
                            "KernelStartFailed") from None
        kernel.process = process
        kernel.started_at = time.monotonic()
        self._write_connection_file(kernel)  # with the pid a later host needs to adopt it
        kernel.settled.clear()
        kernel.iopub_seen.clear()
        kernel.answering.clear()
        if wait:
            self._become_ready(kernel, process)
        else:
            kernel.watcher = gevent.spawn(self._start_in_background, kernel, process)

    def _become_ready(self, kernel: Kernel, process: subprocess.Popen) -> None:
        try:
            self._wait_ready(kernel, float(self.settings["startup_timeout"]))
        except APIError as exc:
            self._kill(kernel, process)
            kernel.execution_state, kernel.reason = "dead", exc.message
            kernel.settled.set()
            raise
        kernel.execution_state = "idle"
        kernel.touch()
        kernel.settled.set()
        kernel.watcher = gevent.spawn(self._watch, kernel, process)

    def _start_in_background(self, kernel: Kernel, process: subprocess.Popen) -> None:
        """Readiness of a new kernel; a shutdown or restart meanwhile kills this greenlet."""
        try:
            self._become_ready(kernel, process)
        except APIError as exc:
            log.warning("kernel %s: %s", kernel.kernel_id, exc.message)
            self.publish(kernel.kernel_id, {"event": "dead", "reason": exc.message})

    def _wait_ready(self, kernel: Kernel, timeout: float) -> None:
        """Until the kernel answers kernel_info on shell, and the host's own iopub subscription
        hears it (a SUB socket joins late: the first run's output must be recorded and kept for
        replay like every later one); its process exiting ends the wait. The request is sent
        again every NUDGE_INTERVAL: a kernel still starting may drop one, and a kernel that said
        busy or idle on iopub is answering requests (a client's may have come first and keep it
        busy). Once it has answered, it is asked again soon, then less often: the busy and idle
        of its first answer often go out before the subscription is through, and the next
        request's reach it (waiting NUDGE_INTERVAL for that made one start in three 0.5 s
        slower). Clients may run code meanwhile, so the iopub wait is bounded."""
        process = kernel.process
        assert process is not None
        shell = zmqlib.socket(zmq.DEALER, connect=kernel.url("shell"))
        try:
            sent: set[str] = set()
            answered_at: float | None = None
            next_nudge, interval = 0.0, NUDGE_INTERVAL
            deadline = time.monotonic() + timeout
            # Once the kernel has answered, IOPUB_CONFIRM bounds the wait, not the start timeout.
            while answered_at is not None or time.monotonic() < deadline:
                if process.poll() is not None:
                    raise APIError(500, f"Kernel '{kernel.spec.name}' died while starting: "
                                         f"{describe_exit(process.returncode)}", "KernelStartFailed")
                if answered_at is not None and (kernel.iopub_seen.is_set()
                                                or time.monotonic() - answered_at > IOPUB_CONFIRM):
                    return
                if time.monotonic() >= next_nudge:  # busy and idle go to iopub too
                    request = wire.new_message("kernel_info_request", {}, session=HOST_SESSION)
                    shell.send_multipart(kernel.signer.serialize(request))
                    sent.add(request.msg_id)
                    next_nudge = time.monotonic() + interval
                    if answered_at is not None:
                        interval = min(2 * interval, NUDGE_INTERVAL)
                limit = deadline if answered_at is None else answered_at + IOPUB_CONFIRM
                wait = max(min(next_nudge, limit) - time.monotonic(), 0.0)
                if answered_at is not None:
                    kernel.iopub_seen.wait(wait)
                    continue
                replied = zmqlib.poll(shell, wait * 1000)
                if replied and self._reply_parent(kernel, shell.recv_multipart()) in sent:
                    answered_at = time.monotonic()
                elif kernel.answering.is_set():
                    answered_at = time.monotonic()  # it answers others (a client was quicker)
                if answered_at is not None:
                    next_nudge, interval = answered_at + RENUDGE_FIRST, 2 * RENUDGE_FIRST
            raise APIError(504, f"Kernel '{kernel.spec.name}' did not answer within {timeout:g} s of"
                                 " starting; it was stopped", "KernelStartTimeout")
        finally:
            shell.close()

    @staticmethod
    def _reply_parent(kernel: Kernel, frames: list[bytes]) -> str | None:
        """The msg_id a signed reply answers; None for a message that is not one."""
        try:
            _, signature, parts = wire.split(frames)
            kernel.signer.verify(signature, parts)
            return wire.loads_object(parts[1], "parent_header").get("msg_id")
        except wire.WireError as exc:
            log.warning("kernel %s: dropped a reply: %s", kernel.kernel_id, exc)
            return None

    @classmethod
    def _is_reply(cls, kernel: Kernel, frames: list[bytes], msg_id: str) -> bool:
        return cls._reply_parent(kernel, frames) == msg_id

    def _watch(self, kernel: Kernel, process: subprocess.Popen | Adopted) -> None:
        """Waits for the process to end on its own; then restarts it or declares it dead."""
        returncode = process.wait()
        with kernel.lock:
            if kernel.process is not process or self.kernels.get(kernel.kernel_id) is not kernel:
                return
            self._kill(kernel, process)
            reason = describe_exit(returncode)
            log.warning("kernel %s: %s", kernel.kernel_id, reason)
            kernel.reason = reason
            self._end_runs(kernel, "error", f"the kernel died: {reason}")
            if time.monotonic() - kernel.started_at > STABLE_SECONDS:
                kernel.restarts = 0
            while self.settings["autorestart"] and kernel.restarts < self.settings["restart_limit"]:
                kernel.restarts += 1
                kernel.execution_state = "restarting"
                self.publish(kernel.kernel_id, {"event": "restarting", "reason": reason})
                try:
                    self._spawn(kernel)
                    log.info("kernel %s restarted (restart %d)", kernel.kernel_id, kernel.restarts)
                    self.publish(kernel.kernel_id, {"event": "restarted"})
                    return
                except APIError as exc:
                    reason = exc.message
            kernel.execution_state, kernel.reason = "dead", reason
            self.publish(kernel.kernel_id, {"event": "dead", "reason": reason})

    def _stop(self, kernel: Kernel, *, restart: bool, grace: float = 2.0) -> None:
        """Ask the kernel to shut down on its control channel, then kill what remains."""
        if kernel.watcher is not None:
            kernel.watcher.kill(block=False)
            kernel.watcher = None
        process = kernel.process
        if process is None:
            return
        if process.poll() is None:
            control = zmqlib.socket(zmq.DEALER, connect=kernel.url("control"))
            try:
                request = wire.new_message("shutdown_request", {"restart": restart}, session=HOST_SESSION)
                control.send_multipart(kernel.signer.serialize(request))
                try:
                    process.wait(grace)
                except subprocess.TimeoutExpired:
                    pass
            finally:
                control.close()
        self._kill(kernel, process)

    @staticmethod
    def _kill(kernel: Kernel, process: subprocess.Popen | Adopted) -> None:
        """SIGKILL the kernel's whole process group (its own children too), reap it, and remove
        the unix sockets it leaves behind."""
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            log.error("kernel process %d did not die after SIGKILL", process.pid)
        endpoints.remove_sockets(kernel.connection)

    def restart(self, kernel_id: str) -> Kernel:
        kernel = self.get(kernel_id)
        with kernel.lock:
            kernel.execution_state = "restarting"
            self._end_runs(kernel, "aborted", "the kernel was restarted")
            self._stop(kernel, restart=True)
            kernel.restarts, kernel.reason = 0, None
            self._spawn(kernel)
        self.publish(kernel_id, {"event": "restarted"})
        return kernel

    def interrupt(self, kernel_id: str) -> None:
        """Interrupt the kernel; one still starting is first awaited (SIGINT would kill it)."""
        kernel = self.get(kernel_id)
        kernel.settled.wait(float(self.settings["startup_timeout"]))
        process = kernel.process
        if kernel.execution_state == "dead" or process is None or process.poll() is not None:
            raise APIError(409, f"Kernel {kernel_id} is not running: {kernel.reason}", "KernelDead")
        if kernel.spec.interrupt_mode == "message":
            control = zmqlib.socket(zmq.DEALER, connect=kernel.url("control"))
            try:
                request = wire.new_message("interrupt_request", {}, session=HOST_SESSION)
                control.send_multipart(kernel.signer.serialize(request))
                # As jupyter_client does, the interrupt is not made to wait for the kernel's
                # reply (ipykernel 7 sometimes sends none); the socket stays open a moment so
                # the request goes out.
                deadline = time.monotonic() + INTERRUPT_REPLY_WAIT
                while time.monotonic() < deadline:
                    if zmqlib.poll(control, 100) and self._is_reply(kernel, control.recv_multipart(),
                                                                     request.msg_id):
                        return
                log.info("kernel %s: no interrupt_reply within %g s", kernel_id, INTERRUPT_REPLY_WAIT)
                return
            finally:
                control.close()
        try:
            os.killpg(process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def shutdown(self, kernel_id: str) -> None:
        kernel = self.get(kernel_id)
        with kernel.lock:
            self.kernels.pop(kernel_id, None)
            self._end_runs(kernel, "aborted", "the kernel was shut down")
            self._stop(kernel, restart=False)
            if kernel.monitor is not None:
                kernel.monitor.kill(block=False)
            kernel.connection_file.unlink(missing_ok=True)
        self.publish(kernel_id, {"event": "shutdown"})
        for callback in self.on_shutdown:
            callback(kernel_id)
        log.info("kernel %s shut down", kernel_id)

    def shutdown_all(self) -> None:
        gevent.joinall([gevent.spawn(self.shutdown, kernel_id) for kernel_id in list(self.kernels)],
                       timeout=10)

    # Connections, activity, culling --------------------------------------------------------

    def attach(self, kernel_id: str, connection_id: str, session_id: str, worker: int = 0) -> None:
        """Register a websocket of web worker `worker`; an older one of the same session is told
        to go, and a reconnecting session waits for it to report (see `replay`)."""
        kernel = self.get(kernel_id)
        for old_id, old_session in list(kernel.connections.items()):
            if session_id and old_session == session_id and old_id != connection_id:
                del kernel.connections[old_id]
                kernel.departing[old_id] = old_session
                kernel.departed[session_id] = gevent.event.Event()
                self.publish(kernel_id, {"event": "replaced", "connection_id": old_id})
        kernel.connections[connection_id] = session_id
        kernel.workers[connection_id] = worker
        kernel.delivered[connection_id] = kernel.replay.latest
        kernel.touch()

    def wait_settled(self, kernel_id: str, timeout: float) -> bool:
        """Until a starting kernel is up (or dead), its output heard by the host's own iopub
        subscription: a client's requests are relayed only then, so none of their output
        misses the recording or the replay buffer. False if it still starts after `timeout`."""
        return bool(self.get(kernel_id).settled.wait(min(max(timeout, 0.0), 120.0)))

    def progress(self, kernel_id: str, connection_ids: list[str], header: bytes) -> None:
        """Websockets (of one web worker, which tells of them together) delivered the iopub
        message with this header: if their worker dies without saying goodbye, their sessions
        resume from here."""
        kernel = self.kernels.get(kernel_id)
        if kernel is None or not kernel.replay.enabled:
            return
        if not any(connection_id in kernel.delivered for connection_id in connection_ids):
            return
        try:
            seq = self._position(kernel, str(wire.loads_object(header, "header").get("msg_id")))
        except wire.WireError:
            return
        for connection_id in connection_ids:
            if seq is not None and connection_id in kernel.delivered:  # notices may overtake each other
                kernel.delivered[connection_id] = max(seq, kernel.delivered[connection_id])

    def detach(self, kernel_id: str, connection_id: str, last_msg_id: str | None = None) -> None:
        """A websocket went away; `last_msg_id` is the last iopub message it delivered, which
        becomes its session's place in the replay buffer."""
        kernel = self.kernels.get(kernel_id)
        if kernel is None:
            return
        seq = self._position(kernel, last_msg_id) if last_msg_id else None
        self._depart(kernel, connection_id, seq)

    def _depart(self, kernel: Kernel, connection_id: str, seq: int | None = None) -> None:
        """Forget a websocket, keeping its session's place (the last message it is known to
        have delivered) for a reconnect."""
        session_id = kernel.connections.pop(connection_id, None) or kernel.departing.pop(connection_id, None)
        kernel.workers.pop(connection_id, None)
        delivered = kernel.delivered.pop(connection_id, kernel.replay.latest)
        if session_id is None:
            return
        kernel.touch()
        kernel.replay.remember(session_id, delivered if seq is None else max(seq, delivered))
        departed = kernel.departed.pop(session_id, None)
        if departed is not None:
            departed.set()

    def prune_connections(self) -> None:
        """Forget the websockets of web workers that died (SIGKILL, OOM) without detaching,
        and let go of replay messages past their age on kernels that have fallen silent."""
        for kernel in list(self.kernels.values()):
            kernel.replay.trim()
            for connection_id, worker in list(kernel.workers.items()):
                if worker and not runtime.pid_alive(worker):
                    log.info("kernel %s: connection %s went with its worker %d", kernel.kernel_id,
                             connection_id, worker)
                    self._depart(kernel, connection_id)

    @staticmethod
    def _position(kernel: Kernel, msg_id: str, wait: float = 0.5) -> int | None:
        """Where `msg_id` is in the buffer; the host's own iopub socket may be a moment behind
        the relay's, so a message not there yet is waited for, briefly."""
        if not kernel.replay.enabled:
            return None
        deadline = time.monotonic() + wait
        while True:
            seq = kernel.replay.position_of(msg_id)
            if seq is not None or time.monotonic() > deadline:
                return seq
            gevent.sleep(0.02)

    def park(self, kernel_id: str, session_id: str, channel: str, frames: list[bytes]) -> None:
        """A reply (shell, control, stdin) came for session `session_id` after its connection
        left: its connection now gets it at once (an event, whichever worker it is on), or,
        with none, its next one does with its replay. Once either way."""
        kernel = self.kernels.get(kernel_id)
        if kernel is None or not kernel.replay.enabled:
            return
        for connection_id, connected_session in kernel.connections.items():
            if connected_session == session_id:
                event = {"event": "reply", "connection_id": connection_id, "channel": channel}
                self.publish(kernel_id, event, frames)
                return
        kernel.replay.park(session_id, channel, frames)

    def replay(self, kernel_id: str, session_id: str, connection_id: str,
               first_live: str | None = None) -> tuple[dict[str, Any], list[bytes]]:
        """What session `session_id` missed while away, for its new connection.

        `first_live` is the first iopub message the new connection got live (it subscribed
        before asking): the replay ends just before it. `seen` is the id of the last message
        the session had seen: an old connection may have delivered it, and some before it,
        while the new one had already subscribed. The answer: `{"counts": frames per message,
        "seen", "dropped": messages lost to the buffer's bounds, "known": whether the session
        was seen before, "replies": [channel, frame count] of each reply kept for it}`, then
        the messages' frames and the replies', all in one list.
        """
        kernel = self.get(kernel_id)
        departed = kernel.departed.get(session_id)
        if departed is not None and not departed.wait(DEPARTURE_WAIT):
            for old_id, departing_session in list(kernel.departing.items()):
                if departing_session == session_id:  # its worker is gone or stuck: use its progress
                    self._depart(kernel, old_id)
        replies = kernel.replay.unpark(session_id)
        reply_counts = [[channel, len(frames)] for channel, frames in replies]
        reply_frames = [frame for _, frames in replies for frame in frames]
        cursor = kernel.replay.take(session_id)
        if cursor is None:
            unknown = {"counts": [], "seen": None, "dropped": 0, "known": False, "replies": reply_counts}
            return unknown, reply_frames
        live_from = self._position(kernel, first_live, wait=DEPARTURE_WAIT) if first_live else None
        entries, dropped = kernel.replay.since(cursor)
        if live_from is not None:
            entries = [entry for entry in entries if entry.seq < live_from]
        if connection_id in kernel.delivered:
            kernel.delivered[connection_id] = cursor  # it starts from where the session was
        frames = [frame for entry in entries for frame in entry.frames]
        return {"counts": [len(entry.frames) for entry in entries], "seen": kernel.replay.msg_id_at(cursor),
                "dropped": dropped, "known": True, "replies": reply_counts}, frames + reply_frames

    def _monitor_iopub(self, kernel: Kernel) -> None:
        """Keeps every iopub message for replay, and follows status messages for state and
        activity. Only those are verified here: replayed messages are verified by the relay
        that passes them on, like live ones."""
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
                    self._record(kernel, msg_type, signature, parts)
                except wire.WireError as exc:
                    log.warning("kernel %s: dropped an iopub message: %s", kernel.kernel_id, exc)
        finally:
            sub.close()

    def _record(self, kernel: Kernel, msg_type: str, signature: bytes, parts: list[bytes]) -> None:
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
            for callback in self.on_output:
                callback(kernel, execution)

    def _end_runs(self, kernel: Kernel, status: str, reason: str) -> None:
        """The kernel's process ends under its runs: they end too (their reply and idle status
        will never come), so followers learn at once instead of waiting forever."""
        for execution in kernel.recording.end_running(status, reason):
            for callback in self.on_output:
                callback(kernel, execution)

    def executing(self, kernel_id: str, cell_id: str | None, header: bytes) -> None:
        """A client sent an execute request (the header given) from notebook cell `cell_id`."""
        kernel = self.kernels.get(kernel_id)
        if kernel is None or not kernel.recording.enabled:
            return
        try:
            msg_id = wire.loads_object(header, "header").get("msg_id")
        except wire.WireError:
            return
        if isinstance(msg_id, str):
            kernel.recording.expect(msg_id, cell_id if isinstance(cell_id, str) else None, None)

    def cull_idle(self) -> None:
        """Shut down kernels idle longer than cull_idle_timeout (connected/busy ones if allowed)."""
        timeout = self.settings["cull_idle_timeout"]
        if timeout <= 0:
            return
        now = utcnow()
        for kernel in list(self.kernels.values()):
            if kernel.connections and not self.settings["cull_connected"]:
                continue
            if kernel.execution_state == "busy" and not self.settings["cull_busy"]:
                continue
            idle = (now - kernel.last_activity).total_seconds()
            if idle > timeout:
                log.info("culling kernel %s (%s), idle for %.0f s", kernel.kernel_id, kernel.spec.name, idle)
                gevent.spawn(self.shutdown, kernel.kernel_id)

    def cull_forever(self) -> None:
        while True:
            gevent.sleep(self.settings["cull_interval"])
            self.cull_idle()
