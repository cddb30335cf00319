"""One kernel inside the kernel host: its record, its connection file, and the life of its process.

A kernel keeps its connection file, and so its ports, across restarts: the workers' relays
stay connected and ZeroMQ reconnects them to the new process by itself. The file also says
which host owns the kernel, so a host that starts after a dead one can find it (adoption.py).
What happens to a kernel whose process ends (restart, or dead) is the registry's policy
(manager.py); this module starts, awaits, interrupts and stops one process.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import time
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
from ..protocol import endpoints, wire, zmqlib
from ..protocol.kernelspecs import KernelSpec
from .recording import Recording
from .replay import ReplayBuffer

log = logging.getLogger(__name__)

HOST_SESSION = "nbflask-kernel-host"  # the session of the requests the host itself sends a kernel
HOST_KEY = "nbflask_host"  # in each connection file: the pid of the host that owns the kernel
SERVICE_KEY = "nbflask_service"  # ... whether that host is the service one (its kernels outlive it)
PID_KEY = "nbflask_kernel_pid"  # ... the kernel's process, which a new service host adopts
CWD_KEY = "nbflask_cwd"  # ... and where it runs
SESSIONS_KEY = "nbflask_sessions"  # ... and the sessions using it (the service host's kernels)
UNKNOWN_EXIT = 256  # the "exit code" of an adopted kernel: no real one is this
IOPUB_CONFIRM = 5.0  # seconds a ready kernel waits for the host's iopub subscription to hear it
INTERRUPT_REPLY_WAIT = 1.0  # seconds an interrupt_request is given to be answered
NUDGE_INTERVAL = 0.5  # seconds between kernel_info requests to a kernel becoming ready
RENUDGE_FIRST = 0.01  # seconds after its first answer a kernel is asked again, then twice as long


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
    part of `subprocess.Popen` the host uses."""

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
    """What the host holds of one kernel: its spec, ports and key, process, state, the
    websockets attached to it (connections.py), its replay buffer and recording."""

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
    unplaced: set[str] = field(default_factory=set)  # connections of a session not replayed to yet
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

    def write_connection_file(self, service: bool, sessions: list[dict[str, Any]] | None) -> None:
        """The kernel's connection file: what the kernel reads, and what a new host needs to
        find it (this host's pid, the kernel's, where it runs; the service host's kernels also
        keep their `sessions`)."""
        extra: dict[str, Any] = {HOST_KEY: os.getpid(), SERVICE_KEY: service, CWD_KEY: self.cwd}
        if self.process is not None:
            extra[PID_KEY] = self.process.pid
        if sessions is not None:
            extra[SESSIONS_KEY] = sessions
        runtime.write_private(self.connection_file, wire.dumps({**self.connection, **extra}))

    # The process ------------------------------------------------------------------------

    def launch(self, service: bool) -> subprocess.Popen:
        """Start the kernel's process (not awaited: see `wait_ready`); on failure the kernel
        is dead, with the reason, and nothing runs."""
        # JPY_PARENT_PID: ipykernel exits by itself if the host ever vanishes without stopping
        # it; the service host's kernels outlive it instead, for the next one to adopt.
        env = runtime.child_environment(dict(self.spec.env))
        if service:
            env.pop("JPY_PARENT_PID", None)
        else:
            env["JPY_PARENT_PID"] = str(os.getpid())
        command = self.spec.command(str(self.connection_file))
        self.execution_state = "starting"
        try:
            process = subprocess.Popen(command, env=env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        except OSError as exc:
            self.execution_state, self.reason = "dead", f"cannot run {command[0]}: {exc.strerror}"
            raise APIError(500, f"Kernel '{self.spec.name}' could not start: {self.reason}",
                            "KernelStartFailed") from None
        self.process = process
        self.started_at = time.monotonic()
        self.settled.clear()
        self.iopub_seen.clear()
        self.answering.clear()
        return process

    def wait_ready(self, timeout: float) -> None:
        """Until the kernel answers kernel_info on shell, and the host's own iopub subscription
        hears it (a SUB socket joins late: the first run's output must be recorded and kept for
        replay like every later one); its process exiting ends the wait. The request is sent
        again every NUDGE_INTERVAL: a kernel still starting may drop one, and a kernel that said
        busy or idle on iopub is answering requests (a client's may have come first and keep it
        busy). Once it has answered, it is asked again soon, then less often: the busy and idle
        of its first answer often go out before the subscription is through, and the next
        request's reach it (waiting NUDGE_INTERVAL for that made one start in three 0.5 s
        slower). Clients may run code meanwhile, so the iopub wait is bounded."""
        process = self.process
        assert process is not None
        shell = zmqlib.socket(zmq.DEALER, connect=self.url("shell"))
        try:
            sent: set[str] = set()
            answered_at: float | None = None
            next_nudge, interval = 0.0, NUDGE_INTERVAL
            deadline = time.monotonic() + timeout
            # Once the kernel has answered, IOPUB_CONFIRM bounds the wait, not the start timeout.
            while answered_at is not None or time.monotonic() < deadline:
                if process.poll() is not None:
                    raise APIError(500, f"Kernel '{self.spec.name}' died while starting: "
                                         f"{describe_exit(process.returncode)}", "KernelStartFailed")
                if answered_at is not None and (self.iopub_seen.is_set()
                                                or time.monotonic() - answered_at > IOPUB_CONFIRM):
                    return
                if time.monotonic() >= next_nudge:  # busy and idle go to iopub too
                    request = wire.new_message("kernel_info_request", {}, session=HOST_SESSION)
                    shell.send_multipart(self.signer.serialize(request))
                    sent.add(request.msg_id)
                    next_nudge = time.monotonic() + interval
                    if answered_at is not None:
                        interval = min(2 * interval, NUDGE_INTERVAL)
                limit = deadline if answered_at is None else answered_at + IOPUB_CONFIRM
                wait = max(min(next_nudge, limit) - time.monotonic(), 0.0)
                if answered_at is not None:
                    self.iopub_seen.wait(wait)
                    continue
                replied = zmqlib.poll(shell, wait * 1000)
                if replied and self.reply_parent(shell.recv_multipart()) in sent:
                    answered_at = time.monotonic()
                elif self.answering.is_set():
                    answered_at = time.monotonic()  # it answers others (a client was quicker)
                if answered_at is not None:
                    next_nudge, interval = answered_at + RENUDGE_FIRST, 2 * RENUDGE_FIRST
            raise APIError(504, f"Kernel '{self.spec.name}' did not answer within {timeout:g} s of"
                                 " starting; it was stopped", "KernelStartTimeout")
        finally:
            shell.close()

    def reply_parent(self, frames: list[bytes]) -> str | None:
        """The msg_id a signed reply answers; None for a message that is not one."""
        try:
            _, signature, parts = wire.split(frames)
            self.signer.verify(signature, parts)
            return wire.loads_object(parts[1], "parent_header").get("msg_id")
        except wire.WireError as exc:
            log.warning("kernel %s: dropped a reply: %s", self.kernel_id, exc)
            return None

    def interrupt(self) -> None:
        """Interrupt the running kernel: an interrupt_request on control if its kernelspec
        says `message`, else SIGINT to its process group. 409 if it is not running."""
        process = self.process
        if self.execution_state == "dead" or process is None or process.poll() is not None:
            raise APIError(409, f"Kernel {self.kernel_id} is not running: {self.reason}", "KernelDead")
        if self.spec.interrupt_mode == "message":
            control = zmqlib.socket(zmq.DEALER, connect=self.url("control"))
            try:
                request = wire.new_message("interrupt_request", {}, session=HOST_SESSION)
                control.send_multipart(self.signer.serialize(request))
                # As jupyter_client does, the interrupt is not made to wait for the kernel's
                # reply (ipykernel 7 sometimes sends none); the socket stays open a moment so
                # the request goes out.
                deadline = time.monotonic() + INTERRUPT_REPLY_WAIT
                while time.monotonic() < deadline:
                    if (zmqlib.poll(control, 100)
                            and self.reply_parent(control.recv_multipart()) == request.msg_id):
                        return
                log.info("kernel %s: no interrupt_reply within %g s", self.kernel_id, INTERRUPT_REPLY_WAIT)
                return
            finally:
                control.close()
        try:
            os.killpg(process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def stop(self, *, restart: bool, grace: float = 2.0) -> None:
        """Ask the kernel to shut down on its control channel, then kill what remains; its
        watcher goes first, so the end is not taken for a death."""
        if self.watcher is not None:
            self.watcher.kill(block=False)
            self.watcher = None
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            control = zmqlib.socket(zmq.DEALER, connect=self.url("control"))
            try:
                request = wire.new_message("shutdown_request", {"restart": restart}, session=HOST_SESSION)
                control.send_multipart(self.signer.serialize(request))
                try:
                    process.wait(grace)
                except subprocess.TimeoutExpired:
                    pass
            finally:
                control.close()
        self.kill(process)

    def kill(self, process: subprocess.Popen | Adopted) -> None:
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
        endpoints.remove_sockets(self.connection)
