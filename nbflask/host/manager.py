"""The kernel registry inside the kernel host: which kernels run, their restarts, and culling.

Runs only in the host process, under gevent (the host patches before importing this), so
waiting on a process or a socket is one greenlet each and never stalls the others. The
registry starts, restarts, interrupts and shuts down kernels, restarts one whose process dies
(or declares it dead), culls idle ones, and tells the web workers what they cannot see on the
kernels' own sockets (events: restarting, restarted, dead, shutdown, replaced, reply). The
jobs it hands out: one kernel and its process (kernel.py), the websockets attached to a
kernel and what a returning session missed (connections.py), the host's iopub subscription and
recording (iopub_monitor.py), the kernels a dead host left behind (adoption.py).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent

from .. import runtime
from ..api_error import APIError
from ..clock import isoformat, utcnow
from ..config import Settings
from ..protocol import endpoints, kernelspecs
from ..protocol.hostpaths import SERVICE
from ..protocol.kernelspecs import KernelSpec
from . import adoption, connections, iopub_monitor
from .iopub_monitor import OutputListener
from .kernel import HOST_KEY, Adopted, Kernel, describe_exit
from .recording import Recording
from .replay import ReplayBuffer

log = logging.getLogger(__name__)

STABLE_SECONDS = 10  # a kernel that ran this long before dying starts a fresh restart count
IPC_NAME = "kernel-{}"  # a kernel's unix sockets are <runtime folder>/kernel-<random>-1 ... -5


class KernelManager:
    """Starts, watches, restarts, interrupts, culls and stops this deployment's kernels."""

    def __init__(self, settings: Settings, publish: Callable[..., None]) -> None:
        self.settings = settings
        self.service = settings.kernels.host == SERVICE  # kernels outlive this host, for the next to adopt
        self.publish = publish
        self.kernels: dict[str, Kernel] = {}
        self.lost: dict[str, str] = {}  # kernel id -> why it is gone (its host died)
        self.on_shutdown: list[Callable[[str], None]] = []
        self.sessions_of: Callable[[str], list[dict[str, Any]]] = lambda kernel_id: []
        self.adopted_sessions: list[dict[str, Any]] = []  # kept in the files of adopted kernels
        self.on_output: list[OutputListener] = []  # a recorded run changed

    # Lookup ------------------------------------------------------------------------------

    def get(self, kernel_id: str) -> Kernel:
        kernel = self.kernels.get(kernel_id)
        if kernel is None:
            lost = f" ({self.lost[kernel_id]})" if kernel_id in self.lost else ""
            raise APIError(404, f"Kernel does not exist: {kernel_id}{lost}")
        return kernel

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
        root = Path(self.settings.store.root_dir)
        if not root.is_dir():
            return os.getcwd()
        if self.settings.store.class_name == "file" and path:
            folder = (root / os.path.dirname(path.strip("/"))).resolve()
            if folder.is_dir() and (folder == root.resolve() or root.resolve() in folder.parents):
                return str(folder)
        return str(root.resolve())

    # Kernels the registry takes on -----------------------------------------------------------

    def new_kernel(self, kernel_id: str, spec: KernelSpec, cwd: str, connection: dict[str, Any],
                   connection_file: Path, process: Adopted | None = None) -> Kernel:
        """A kernel's record, its iopub replay buffer and recording bounded as configured."""
        bounds = self.settings.kernels
        replay = ReplayBuffer(bounds.replay_buffer_bytes, bounds.replay_buffer_age)
        recording = Recording(bounds.recording_bytes, bounds.recording_age, bounds.recording_stream_chars)
        return Kernel(kernel_id, spec, cwd, connection, connection_file, replay, recording, process=process)

    def follow_iopub(self, kernel: Kernel) -> None:
        """The host's own iopub subscription to the kernel, for replay, state and recording."""
        kernel.monitor = gevent.spawn(iopub_monitor.follow, kernel, self.on_output)

    def take_over(self) -> None:
        """The kernels dead kernel hosts left behind, before serving (see adoption.py)."""
        adoption.take_over(self)

    def adopt(self, kernel: Kernel, sessions: list[dict[str, Any]]) -> None:
        """Take on a kernel a dead service host left running, which answers, with its sessions."""
        kernel.execution_state = "idle"
        kernel.settled.set()
        kernel.watcher = gevent.spawn(self._watch, kernel, kernel.process)
        self.kernels[kernel.kernel_id] = kernel
        self.adopted_sessions += sessions
        self._write_connection_file(kernel)

    def _write_connection_file(self, kernel: Kernel) -> None:
        sessions = self.sessions_of(kernel.kernel_id) if self.service else None
        kernel.write_connection_file(self.service, sessions)

    def record_sessions(self, kernel_id: str) -> None:
        """The service host keeps a kernel's sessions in its connection file, so a host that
        adopts the kernel has them too."""
        kernel = self.kernels.get(kernel_id)
        if self.service and kernel is not None and kernel.connection_file.exists():
            self._write_connection_file(kernel)

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
        name = name or self.settings.kernels.default
        try:
            spec = kernelspecs.get(name)
        except kernelspecs.NoSuchKernelSpec:
            raise APIError(404, f"No such kernel: there is no kernelspec named '{name}'",
                            "NoSuchKernel") from None
        kernel_id = kernel_id or str(uuid.uuid4())
        connection = endpoints.new_connection(self.settings.kernels.transport,
                                              runtime.runtime_dir() / IPC_NAME.format(secrets.token_hex(8)))
        connection.update(key=secrets.token_hex(32), signature_scheme="hmac-sha256", kernel_name=spec.name)
        connection_file = runtime.runtime_dir() / f"kernel-{kernel_id}.json"
        if connection_file.exists():
            raise APIError(409, f"Kernel id {kernel_id} is in use: a kernel with that id is starting"
                                " or stopping, or another server of this user runs one", "KernelIdInUse")
        kernel = self.new_kernel(kernel_id, spec, self.working_dir(path), connection, connection_file)
        self._write_connection_file(kernel)
        try:
            self._spawn(kernel, wait=False)
        except APIError:
            connection_file.unlink(missing_ok=True)
            raise
        self.kernels[kernel_id] = kernel
        self.lost.pop(kernel_id, None)
        self.follow_iopub(kernel)
        log.info("kernel %s (%s) started in %s", kernel_id, spec.name, kernel.cwd)
        return kernel

    def _spawn(self, kernel: Kernel, *, wait: bool = True) -> None:
        """Start the kernel's process; on failure leave nothing running.

        With `wait` (restarts, as Jupyter's restart waits), until the kernel answers, raising
        if it does not. Without (a new kernel, as Jupyter answers once the process runs),
        readiness is awaited in the background: the kernel is `starting` meanwhile, then
        `idle`, or `dead` with the reason (told to connected clients like any death).
        """
        process = kernel.launch(self.service)
        self._write_connection_file(kernel)  # with the pid a later host needs to adopt it
        if wait:
            self._become_ready(kernel, process)
        else:
            kernel.watcher = gevent.spawn(self._start_in_background, kernel, process)

    def _become_ready(self, kernel: Kernel, process: subprocess.Popen) -> None:
        try:
            kernel.wait_ready(float(self.settings.kernels.startup_timeout))
        except APIError as exc:
            kernel.kill(process)
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

    def _watch(self, kernel: Kernel, process: subprocess.Popen | Adopted) -> None:
        """Waits for the process to end on its own; then restarts it or declares it dead."""
        returncode = process.wait()
        with kernel.lock:
            if kernel.process is not process or self.kernels.get(kernel.kernel_id) is not kernel:
                return
            kernel.kill(process)
            reason = describe_exit(returncode)
            log.warning("kernel %s: %s", kernel.kernel_id, reason)
            kernel.reason = reason
            iopub_monitor.end_runs(kernel, "error", f"the kernel died: {reason}", self.on_output)
            if time.monotonic() - kernel.started_at > STABLE_SECONDS:
                kernel.restarts = 0
            settings = self.settings.kernels
            while settings.autorestart and kernel.restarts < settings.restart_limit:
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

    def restart(self, kernel_id: str) -> Kernel:
        kernel = self.get(kernel_id)
        with kernel.lock:
            kernel.execution_state = "restarting"
            iopub_monitor.end_runs(kernel, "aborted", "the kernel was restarted", self.on_output)
            kernel.stop(restart=True)
            kernel.restarts, kernel.reason = 0, None
            self._spawn(kernel)
        self.publish(kernel_id, {"event": "restarted"})
        return kernel

    def interrupt(self, kernel_id: str) -> None:
        """Interrupt the kernel; one still starting is first awaited (SIGINT would kill it)."""
        kernel = self.get(kernel_id)
        kernel.settled.wait(float(self.settings.kernels.startup_timeout))
        kernel.interrupt()

    def shutdown(self, kernel_id: str) -> None:
        kernel = self.get(kernel_id)
        with kernel.lock:
            self.kernels.pop(kernel_id, None)
            iopub_monitor.end_runs(kernel, "aborted", "the kernel was shut down", self.on_output)
            kernel.stop(restart=False)
            # Shut down while it started: stop() ended the watcher that would have settled it,
            # and whoever waits for its start (a websocket's relay, a run) must learn at once
            # that it is gone, not wait out its timeout.
            if not kernel.settled.is_set():
                kernel.execution_state, kernel.reason = "dead", "shut down while starting"
                kernel.settled.set()
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

    # Websocket connections (connections.py) --------------------------------------------------

    def attach(self, kernel_id: str, connection_id: str, session_id: str, worker: int = 0) -> None:
        """Register a websocket of web worker `worker`; an older one of the same session is told
        to go (`replaced`), and a reconnecting session waits for it to report (see `replay`)."""
        for old_id in connections.attach(self.get(kernel_id), connection_id, session_id, worker):
            self.publish(kernel_id, {"event": "replaced", "connection_id": old_id})

    def wait_settled(self, kernel_id: str, timeout: float) -> bool:
        """Until a starting kernel is up (or dead), its output heard by the host's own iopub
        subscription: a client's requests are relayed only then, so none of their output
        misses the recording or the replay buffer. False if it still starts after `timeout`."""
        return bool(self.get(kernel_id).settled.wait(min(max(timeout, 0.0), 120.0)))

    def progress(self, kernel_id: str, connection_ids: list[str], header: bytes) -> None:
        """Websockets delivered the iopub message with this header (connections.progress)."""
        kernel = self.kernels.get(kernel_id)
        if kernel is not None:
            connections.progress(kernel, connection_ids, header)

    def detach(self, kernel_id: str, connection_id: str, last_msg_id: str | None = None) -> None:
        """A websocket went away, having delivered up to `last_msg_id` (connections.detach)."""
        kernel = self.kernels.get(kernel_id)
        if kernel is not None:
            connections.detach(kernel, connection_id, last_msg_id)

    def prune_connections(self) -> None:
        """Forget the websockets of web workers that died (SIGKILL, OOM) without detaching,
        and let go of replay messages past their age on kernels that have fallen silent."""
        for kernel in list(self.kernels.values()):
            connections.prune(kernel)

    def park(self, kernel_id: str, session_id: str, channel: str, frames: list[bytes]) -> None:
        """A reply came for session `session_id` after its connection left: its connection now
        gets it at once (a `reply` event, whichever worker it is on), or, with none, its next
        one does with its replay (connections.park). Once either way."""
        kernel = self.kernels.get(kernel_id)
        if kernel is None:
            return
        connection_id = connections.park(kernel, session_id, channel, frames)
        if connection_id is not None:
            self.publish(kernel_id, {"event": "reply", "connection_id": connection_id, "channel": channel},
                         frames)

    def replay(self, kernel_id: str, session_id: str, connection_id: str,
               first_live: str | None = None) -> tuple[dict[str, Any], list[bytes]]:
        """What session `session_id` missed while away, for its new connection (connections.replay)."""
        return connections.replay(self.get(kernel_id), session_id, connection_id, first_live)

    def executing(self, kernel_id: str, cell_id: str | None, header: bytes) -> None:
        """A client sent an execute request (the header given) from notebook cell `cell_id`."""
        kernel = self.kernels.get(kernel_id)
        if kernel is not None:
            iopub_monitor.expect_run(kernel, cell_id, header)

    # Culling ---------------------------------------------------------------------------------

    def cull_idle(self) -> None:
        """Shut down kernels idle longer than cull_idle_timeout (connected/busy ones if allowed)."""
        settings = self.settings.kernels
        timeout = settings.cull_idle_timeout
        if timeout <= 0:
            return
        now = utcnow()
        for kernel in list(self.kernels.values()):
            if kernel.connections and not settings.cull_connected:
                continue
            if kernel.execution_state == "busy" and not settings.cull_busy:
                continue
            idle = (now - kernel.last_activity).total_seconds()
            if idle > timeout:
                log.info("culling kernel %s (%s), idle for %.0f s", kernel.kernel_id, kernel.spec.name, idle)
                gevent.spawn(self.shutdown, kernel.kernel_id)

    def cull_forever(self) -> None:
        while True:
            gevent.sleep(self.settings.kernels.cull_interval)
            self.cull_idle()
