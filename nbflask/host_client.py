"""The worker side of the kernel host: find or start it, and ask it things (`HostClient`).

What a worker may ask is declared in nbflask.protocol.host_api; `HostClient`'s methods for it
are made from those declarations. Every web worker of a deployment talks to the same host over
its control socket in the private runtime folder. The host is started lazily, on the first
kernel operation, so apps that never touch kernels (and their tests) pay nothing, and started
again by the next request after it died. One starter at a time: a lock of this process
(which yields under gevent; a blocking `flock` would freeze every greenlet of the worker) and a
lock file for the others.
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
from typing import Any

import zmq

from . import runtime
from .api_error import APIError
from .config import Settings, StoreSettings
from .config.settings import yaml_keys
from .protocol import zmqlib
from .protocol.host_api import HOST_FAILED, HOST_GONE, HOST_TIMEOUT, OPERATIONS, HostAPI, HostNotices
from .protocol.hostpaths import SERVICE, HostPaths
from .protocol.operations import Operation, client_of

START_TIMEOUT = 30.0


def host_config(settings: Settings) -> dict[str, Any]:
    """What the host needs of the deployment's settings, as JSON shaped like the YAML file: the
    host rebuilds the same typed, checked Settings from it (`nbflask.host.server.run`). The
    store's root is made absolute here, where it was read; the store section goes whole, its
    options included, since they are checked with it (the host gets them on its stdin, never
    on its command line); server.websocket_send_buffer bounds replay and scrollback."""
    store = settings.store
    own = {key: getattr(store, field.name) for key, field in yaml_keys(StoreSettings).items()}
    swift = dataclasses.asdict(store.swift) if store.swift is not None else {}
    return {
        "server": {"websocket_send_buffer": settings.server.websocket_send_buffer},
        "store": {**own, "root_dir": os.path.abspath(os.path.expanduser(store.root_dir)),
                  **store.options, **swift},
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
                        raise HOST_FAILED.error("another process held the kernel host's lock file"
                                                f" for {START_TIMEOUT:g} s") from None
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
            [sys.executable, "-m", "nbflask.host.server", "--owner-pid", str(owner), "--config", "-"],
            stdin=subprocess.PIPE,
        )
        with process.stdin:  # the settings, credentials included: not for `ps` to show
            process.stdin.write(json.dumps(host_config(settings)).encode())
        while running_pid(paths) != process.pid:
            if process.poll() is not None:
                raise HOST_FAILED.error(f"the kernel host exited at start with code {process.returncode};"
                                        " see the server log")
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise HOST_FAILED.error(f"the kernel host did not start within {START_TIMEOUT:g} s")
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


@client_of(HostAPI, notices=HostNotices)
class HostClient(HostAPI):
    """`state().host`: the worker's handle on the kernel host. Its methods for the host's
    operations are those declared by HostAPI and HostNotices (nbflask.protocol.host_api), made
    by `client_of` to send them through `_request` and `_notify`; what it adds finds and
    starts the host."""

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
            raise HOST_GONE.error("the kernel host service is not running (kernels.host is 'service'"
                                  f" and {self.paths.info_file} names no live host); start it with"
                                  " `nbflask kernel-host --config FILE`")
        assert isinstance(self.paths.owner, int)
        if not runtime.pid_alive(self.paths.owner):
            raise HOST_GONE.error(f"the server process {self.paths.owner} that owns the kernel host"
                                  " is gone; restart the server")
        process = start_host(self.settings, self.paths.owner)
        if process is not None and self.paths.owner == os.getpid():
            self.process = process  # ours to stop; a gunicorn worker leaves that to the master
        pid = running_pid(self.paths)
        if pid is None:
            raise HOST_GONE.error("the kernel host stopped right after it started; see the server log")
        return pid

    def pid(self) -> int | None:
        """The running host's pid, without starting one."""
        return running_pid(self.paths)

    def _request(self, op: Operation, arguments: dict[str, Any]) -> Any:
        """Send a declared operation, its arguments bound to its parameters, and wait for the
        answer. APIError carries the host's refusal, its silence, or its death while answering,
        as HTTP."""
        timeout = op.timeout(arguments, self.startup_timeout)
        pid = self.ensure()
        sock = zmqlib.socket(zmq.DEALER, connect=self.paths.control_url)
        try:
            sock.send_multipart(op.request(arguments, os.getpid()))
            deadline = time.monotonic() + timeout
            while not zmqlib.poll(sock, 250):
                if not runtime.pid_alive(pid):
                    raise HOST_GONE.error(f"the kernel host (pid {pid}) died while answering '{op.name}'")
                if time.monotonic() > deadline:
                    raise HOST_TIMEOUT.error(f"the kernel host did not answer '{op.name}'"
                                             f" within {timeout:g} s")
            body, *frames = sock.recv_multipart()
        finally:
            sock.close()
        reply = json.loads(body)
        if not reply["ok"]:
            raise APIError(reply["status"], reply["message"], reply.get("reason"))
        return op.result_from_wire(reply["result"], frames)

    def progress_socket(self) -> Any:
        """A socket for notices (HostNotices), owned by its caller (a relay's pump)."""
        return zmqlib.socket(zmq.DEALER, connect=self.paths.control_url)

    def _notify(self, sock: Any, op: Operation, arguments: dict[str, Any]) -> None:
        """Send a notice on `sock` without waiting: if the host is not reading (gone or stuck),
        it is dropped, and the relay notices the host's trouble on its own."""
        try:
            sock.send_multipart(op.request(arguments, os.getpid()), zmq.NOBLOCK)
        except zmq.Again:
            pass

    def counts(self) -> dict[str, Any]:
        """For /api/status; never starts the host (no host means no kernels)."""
        if running_pid(self.paths) is None:
            return {"kernels": 0, "connections": 0}
        try:
            return self._request(OPERATIONS["counts"], {})
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
