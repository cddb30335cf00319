"""The worker side of the kernel host: find or start it, and ask it things.

Every web worker of a deployment talks to the same host over its control socket in the
private runtime folder. The host is started lazily, on the first kernel operation, so apps
that never touch kernels (and their tests) pay nothing, and started again by the next request
after it died. One starter at a time: a lock of this process (which yields under gevent; a
blocking `flock` would freeze every greenlet of the worker) and a lock file for the others.
Requests use a fresh DEALER socket each, owned by the calling greenlet or thread for the
duration of the call.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import zmq

from . import runtime
from .api_error import APIError
from .config import Settings
from .protocol import zmqlib
from .protocol.hostpaths import SERVICE, HostPaths
from .protocol.terminals import INPUT_WAIT

START_TIMEOUT = 30.0


def host_config(settings: Settings) -> dict[str, Any]:
    """What the host needs of the deployment's settings, as JSON shaped like the YAML file: the
    host rebuilds the typed Settings from it (`nbflask.host.server.run`). The store's root is
    made absolute here, where it was read; the store's options (credentials) stay out of the
    host's command line; server.websocket_send_buffer bounds replay and scrollback."""
    return {
        "server": {"websocket_send_buffer": settings.server.websocket_send_buffer},
        "store": {"class": settings.store.class_name,
                  "root_dir": os.path.abspath(os.path.expanduser(settings.store.root_dir))},
        "kernels": dataclasses.asdict(settings.kernels),
        "terminals": dataclasses.asdict(settings.terminals),
    }


def running_pid(paths: HostPaths) -> int | None:
    """The pid of the deployment's live host, or None."""
    try:
        pid = int(json.loads(paths.info_file.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if runtime.pid_alive(pid) else None


_start_locks: dict[int, threading.Lock] = {}


def _start_lock() -> threading.Lock:
    """This process's lock for starting a host, made on first use: after gevent's patching
    (gunicorn imports this module in the master, before its workers patch), so it yields."""
    return _start_locks.setdefault(os.getpid(), threading.Lock())


def _locked(path: Path, deadline: float) -> Any:
    """The lock file, open and locked, taken without blocking the process (try, and sleep,
    green, in between). A stopping host removes the file: a lock on a file that is no longer
    the one at `path` guards nothing, so it is taken again on the new one."""
    while True:
        lock = open(path, "a")
        try:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise APIError(503, "another process held the kernel host's lock file for"
                                            f" {START_TIMEOUT:g} s", "KernelHostFailed") from None
                    time.sleep(0.05)
            try:
                if os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino:
                    return lock
            except FileNotFoundError:
                pass
        except BaseException:
            lock.close()
            raise
        lock.close()


def start_host(settings: Any, owner: int | None = None) -> subprocess.Popen | None:
    """Start the kernel host of server process `owner` (default: this process's) unless it
    runs; returns the process when this call started it. The host stops when `owner` is gone."""
    owner = owner or runtime.host_owner()
    paths = HostPaths(runtime.runtime_dir(), owner)
    deadline = time.monotonic() + START_TIMEOUT
    with _start_lock(), _locked(paths.lock_file, deadline):
        if running_pid(paths) is not None:
            return None
        paths.info_file.unlink(missing_ok=True)
        process = subprocess.Popen(
            [sys.executable, "-m", "nbflask.host.server", "--owner-pid", str(owner),
             "--config", json.dumps(host_config(settings))],
            stdin=subprocess.DEVNULL,
        )
        while running_pid(paths) != process.pid:
            if process.poll() is not None:
                raise APIError(503, f"the kernel host exited at start with code {process.returncode};"
                                    " see the server log", "KernelHostFailed")
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise APIError(503, f"the kernel host did not start within {START_TIMEOUT:g} s",
                               "KernelHostFailed")
            time.sleep(0.02)
        return process


def stop_host(process: subprocess.Popen | None = None, timeout: float = 15.0) -> None:
    """Stop this process's host (and so its kernels): SIGTERM, then SIGKILL after `timeout`."""
    pid = process.pid if process is not None else running_pid(HostPaths(runtime.runtime_dir(), os.getpid()))
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and not runtime.pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process is not None:
        process.wait()


class Missed(NamedTuple):
    """What a session missed while it had no connection, for its new one."""

    messages: list[list[bytes]]  # iopub messages, each as the kernel's frames, in order
    seen: str | None  # the id of the last iopub message the session had seen
    dropped: int  # older iopub messages the buffer's bounds dropped
    replies: list[tuple[str, list[bytes]]]  # (channel, frames) of replies kept for it


class KernelHost:
    """`state.kernels`: the worker's handle on the kernel host, one typed method per operation."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.service = settings.kernels.host == SERVICE
        self.paths = HostPaths(runtime.runtime_dir(), SERVICE if self.service else runtime.host_owner())
        self.process: subprocess.Popen | None = None
        self.startup_timeout = float(settings.kernels.startup_timeout)

    def ensure(self) -> int:
        """The pid of the running host, started first if there is none (or it died); the
        service host is never started (or stopped) from here: that is its service's job."""
        pid = running_pid(self.paths)
        if pid is not None:
            return pid
        if self.service:
            raise APIError(503, "the kernel host service is not running (kernels.host is 'service'"
                                f" and {self.paths.info_file} names no live host); start it with"
                                " `nbflask kernel-host --config FILE`", "KernelHostGone")
        assert isinstance(self.paths.owner, int)
        if not runtime.pid_alive(self.paths.owner):
            raise APIError(503, f"the server process {self.paths.owner} that owns the kernel host"
                                " is gone; restart the server", "KernelHostGone")
        process = start_host(self.settings, self.paths.owner)
        if process is not None and self.paths.owner == os.getpid():
            self.process = process  # ours to stop; a gunicorn worker leaves that to the master
        pid = running_pid(self.paths)
        if pid is None:
            raise APIError(503, "the kernel host stopped right after it started; see the server log",
                           "KernelHostGone")
        return pid

    def pid(self) -> int | None:
        """The running host's pid, without starting one."""
        return running_pid(self.paths)

    def _exchange(self, op: str, timeout: float, args: dict[str, Any],
                  frames: list[bytes] = ()) -> tuple[Any, list[bytes]]:
        """One request (with raw `frames` after it, if any): the result and any raw frames
        after it. APIError carries the host's refusal, its silence, or its death while
        answering, as HTTP."""
        pid = self.ensure()
        sock = zmqlib.socket(zmq.DEALER, connect=self.paths.control_url)
        try:
            sock.send_multipart([json.dumps({"op": op, "args": args}).encode(), *frames])
            deadline = time.monotonic() + timeout
            while not zmqlib.poll(sock, 250):
                if not runtime.pid_alive(pid):
                    raise APIError(503, f"the kernel host (pid {pid}) died while answering '{op}'",
                                   "KernelHostGone")
                if time.monotonic() > deadline:
                    raise APIError(503, f"the kernel host did not answer '{op}' within {timeout:g} s",
                                   "KernelHostTimeout")
            body, *frames = sock.recv_multipart()
        finally:
            sock.close()
        reply = json.loads(body)
        if not reply["ok"]:
            raise APIError(reply["status"], reply["message"], reply.get("reason"))
        return reply["result"], frames

    def _call(self, op: str, timeout: float = 10.0, **args: Any) -> Any:
        return self._exchange(op, timeout, args)[0]

    def _lifecycle(self, op: str, **args: Any) -> Any:
        """Requests that may start a kernel wait as long as a kernel may take to start."""
        return self._call(op, timeout=self.startup_timeout + 15, **args)

    # Kernels -------------------------------------------------------------------------------

    def list_kernels(self) -> list[dict[str, Any]]:
        return self._call("list_kernels")

    def start_kernel(self, name: str | None = None, path: str | None = None,
                     kernel_id: str | None = None) -> dict[str, Any]:
        return self._lifecycle("start_kernel", name=name, path=path, kernel_id=kernel_id)

    def get_kernel(self, kernel_id: str) -> dict[str, Any]:
        return self._call("get_kernel", kernel_id=kernel_id)

    def shutdown_kernel(self, kernel_id: str) -> None:
        self._lifecycle("shutdown_kernel", kernel_id=kernel_id)

    def interrupt_kernel(self, kernel_id: str) -> None:
        self._call("interrupt_kernel", kernel_id=kernel_id)

    def restart_kernel(self, kernel_id: str) -> dict[str, Any]:
        return self._lifecycle("restart_kernel", kernel_id=kernel_id)

    def connection_info(self, kernel_id: str) -> dict[str, Any]:
        return self._call("connection_info", kernel_id=kernel_id)

    # Websocket connections -----------------------------------------------------------------

    def attach(self, kernel_id: str, connection_id: str, session_id: str) -> None:
        self._call("attach", kernel_id=kernel_id, connection_id=connection_id, session_id=session_id,
                   worker=os.getpid())

    def wait_settled(self, kernel_id: str, timeout: float) -> bool:
        """Until the kernel has started (or failed to), at most `timeout` seconds."""
        return self._exchange("wait_settled", timeout + 10, {"kernel_id": kernel_id, "timeout": timeout})[0]

    def progress_socket(self) -> Any:
        """A socket for `progress` notices, owned by its caller (a relay's pump)."""
        return zmqlib.socket(zmq.DEALER, connect=self.paths.control_url)

    def progress(self, sock: Any, kernel_id: str, connection_ids: list[str], header: bytes) -> None:
        """Tell the host, without waiting, that websockets delivered the iopub message with
        this header (their sessions resume from there should the worker die)."""
        args = {"kernel_id": kernel_id, "connection_ids": connection_ids}
        request = json.dumps({"op": "progress", "args": args})
        try:
            sock.send_multipart([request.encode(), header], zmq.NOBLOCK)
        except zmq.Again:
            pass  # the host is not reading (gone or stuck): the relay notices that on its own

    def executing(self, sock: Any, kernel_id: str, cell_id: str | None, header: bytes) -> None:
        """Tell the host, without waiting, that a websocket sent the execute request with this
        header for notebook cell `cell_id`: its outputs are recorded for that cell."""
        request = json.dumps({"op": "executing", "args": {"kernel_id": kernel_id, "cell_id": cell_id}})
        try:
            sock.send_multipart([request.encode(), header], zmq.NOBLOCK)
        except zmq.Again:
            pass  # the host is not reading; the run is still recorded, without its cell

    def hello(self, topic: str, connection_id: str) -> None:
        """Ask for a `hello` event on `topic` of the event feed (a subscriber that sees it can
        miss nothing published on that topic after it)."""
        self._call("hello", topic=topic, connection_id=connection_id)

    def detach(self, kernel_id: str, connection_id: str, last_msg_id: str | None = None) -> None:
        self._call("detach", kernel_id=kernel_id, connection_id=connection_id, last_msg_id=last_msg_id)

    def park(self, kernel_id: str, session_id: str, channel: str, frames: list[bytes]) -> None:
        """Hand the host a reply the kernel sent on `channel` to a connection of session
        `session_id` that is gone: the session's connection gets it, now or when it is back."""
        self._exchange("park", 10.0, {"kernel_id": kernel_id, "session_id": session_id,
                                      "channel": channel}, frames)

    def replay(self, kernel_id: str, session_id: str, connection_id: str,
               first_live: str | None = None) -> Missed:
        """What session `session_id` missed while away, up to its new connection's first
        live iopub message `first_live` (see `Missed`)."""
        result, frames = self._exchange("replay", 10.0, {
            "kernel_id": kernel_id, "session_id": session_id, "connection_id": connection_id,
            "first_live": first_live})
        messages = []
        for count in result["counts"]:
            messages.append(frames[:count])
            frames = frames[count:]
        replies = []
        for channel, count in result["replies"]:
            replies.append((channel, frames[:count]))
            frames = frames[count:]
        return Missed(messages, result["seen"], result["dropped"], replies)

    # Cell runs -----------------------------------------------------------------------------

    def run_code(self, kernel_id: str, code: str, cell_id: str | None = None,
                 path: str | None = None) -> dict[str, Any]:
        return self._lifecycle("run_code", kernel_id=kernel_id, code=code, cell_id=cell_id, path=path)

    def get_run(self, kernel_id: str, run_id: str) -> dict[str, Any]:
        return self._call("get_run", kernel_id=kernel_id, run_id=run_id)

    def list_runs(self, kernel_id: str, cell_id: str | None = None) -> list[dict[str, Any]]:
        return self._call("list_runs", kernel_id=kernel_id, cell_id=cell_id)

    def follow_run(self, kernel_id: str, run_id: str, known: dict[str, Any] | None, after: int,
                   timeout: float) -> dict[str, Any]:
        """The run's next step for a follower holding cursor `known` (None: the whole run if it
        is newer than version `after`), once it changed or after `timeout` s; see
        `Executions.follow`."""
        args = {"kernel_id": kernel_id, "run_id": run_id, "known": known, "after": after, "timeout": timeout}
        return self._exchange("follow_run", timeout + 10, args)[0]

    def runs_to_save(self, interval: float) -> list[dict[str, Any]]:
        """Runs this worker should write into their notebooks now (see `RecordedOutputs`)."""
        return self._call("runs_to_save", worker=os.getpid(), interval=interval)

    def run_saved(self, kernel_id: str, run_id: str, version: int) -> None:
        self._call("run_saved", kernel_id=kernel_id, run_id=run_id, version=version, worker=os.getpid())

    # Sessions ------------------------------------------------------------------------------

    def list_sessions(self) -> list[dict[str, Any]]:
        return self._call("list_sessions")

    def get_session(self, session_id: str) -> dict[str, Any]:
        return self._call("get_session", session_id=session_id)

    def create_session(self, path: str, name: str, type: str, kernel: dict[str, Any]) -> dict[str, Any]:
        return self._lifecycle("create_session", path=path, name=name, type=type, kernel=kernel)

    def update_session(self, session_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self._lifecycle("update_session", session_id=session_id, changes=changes)

    def delete_session(self, session_id: str) -> None:
        self._lifecycle("delete_session", session_id=session_id)

    # Terminals -----------------------------------------------------------------------------

    def list_terminals(self) -> list[dict[str, Any]]:
        return self._call("list_terminals")

    def create_terminal(self, name: str | None = None, cwd: str | None = None) -> dict[str, Any]:
        return self._call("create_terminal", name=name, cwd=cwd)

    def get_terminal(self, name: str) -> dict[str, Any]:
        return self._call("get_terminal", name=name)

    def delete_terminal(self, name: str) -> None:
        self._call("delete_terminal", timeout=20.0, name=name)

    def terminal_attach(self, name: str, connection_id: str) -> dict[str, Any]:
        """Register a page's websocket: `{"scrollback": recent output, "seq": its last chunk}`."""
        return self._call("terminal_attach", name=name, connection_id=connection_id, worker=os.getpid())

    def terminal_detach(self, name: str, connection_id: str) -> None:
        self._call("terminal_detach", name=name, connection_id=connection_id)

    def terminal_input(self, name: str, data: str) -> None:
        """Queue input for the terminal; the host waits up to INPUT_WAIT for room."""
        self._call("terminal_input", timeout=INPUT_WAIT + 10, name=name, data=data)

    def terminal_resize(self, name: str, connection_id: str, rows: int, cols: int) -> None:
        self._call("terminal_resize", name=name, connection_id=connection_id, rows=rows, cols=cols)

    # Server --------------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        """For /api/status; never starts the host (no host means no kernels)."""
        if running_pid(self.paths) is None:
            return {"kernels": 0, "connections": 0}
        try:
            return self._call("counts", timeout=5)
        except APIError:
            return {"kernels": 0, "connections": 0}

    def events_url(self) -> str:
        return self.paths.events_url

    def departure(self, pid: int | None) -> tuple[str, bool]:
        """Why host `pid` is gone, for its websockets, and whether its kernels went with it:
        an owned host's kernels follow it; the service host's wait to be adopted by the next."""
        if self.service:
            return (f"the kernel host service (pid {pid}) stopped; its kernels keep running if it is"
                    " restarted soon: reconnect", False)
        return f"the kernel host (pid {pid}) died, and its kernels with it", True

    def close(self) -> None:
        """Stop the host if this process started it (`nbflask run`); gunicorn's master stops its own."""
        if self.process is not None:
            stop_host(self.process)
            self.process = None
