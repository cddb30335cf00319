"""Clients that keep a cell's output whole while web workers come and go.

A `Follower` plays a browser tab: it runs a cell that prints numbered lines over some seconds
and, whenever its websocket is cut (its worker was killed, recycled or reloaded), reconnects
with the same `session_id`, as JupyterLab does, and carries on reading. The lines it ends up
with show whether anything was lost or repeated.
"""

from __future__ import annotations

import time

import psutil
import websocket
from kernelws import KernelSocket

LINES = 60


def counting(lines: int = LINES, pause: float = 0.1) -> str:
    """A cell printing `0` .. `lines - 1`, one line each `pause` seconds."""
    return f"import time\nfor i in range({lines}):\n    print(i, flush=True)\n    time.sleep({pause})"


def numbers(lines: int = LINES) -> str:
    return "".join(f"{i}\n" for i in range(lines))


class Follower:
    def __init__(self, url: str, kernel_id: str, token: str, cert: str | None) -> None:
        self.args = (url, kernel_id, token)
        self.cert = cert
        self.ks = KernelSocket(url, kernel_id, token, cert=cert)
        self.session_id = self.ks.session_id
        self.msg_id: str | None = None
        self.text = ""
        self.reconnects = 0
        self.done = False

    @property
    def local_port(self) -> int:
        return self.ks.ws.sock.getsockname()[1]

    def start(self, code: str) -> str:
        """Send the cell; returns its request's id, for other clients of the kernel to follow."""
        self.msg_id = self.ks.send("shell", "execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True})
        return self.msg_id

    def wait_running(self) -> None:
        """Until the cell's first line is out: the kernel is running it."""
        while not self.text:
            self.step(30)

    def reconnect(self, url: str | None = None, cert: str | None = None, deadline: float = 60) -> None:
        """A new websocket of the same session, to `url` and trusting `cert` if given (a new
        server); retried until the server is back, as a browser does."""
        self.ks.close()
        if url:
            self.args = (url, *self.args[1:])
        self.cert = cert or self.cert
        limit = time.monotonic() + deadline
        while True:
            try:
                self.ks = KernelSocket(*self.args, session_id=self.session_id, cert=self.cert)
                self.reconnects += 1
                return
            except (OSError, websocket.WebSocketException):
                if time.monotonic() > limit:
                    raise
                time.sleep(0.2)

    def step(self, timeout: float = 1.0) -> None:
        """Read one message (or notice a cut and reconnect)."""
        try:
            message = self.ks.recv(timeout)
        except websocket.WebSocketTimeoutException:
            return
        except (ConnectionError, OSError, websocket.WebSocketException):
            self.reconnect()
            return
        if message["parent_header"].get("msg_id") != self.msg_id:
            return
        if message["header"]["msg_type"] == "stream":
            self.text += message["content"]["text"]
        if message["header"]["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            self.done = True

    def finish(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while not self.done:
            assert time.monotonic() < deadline, f"the cell never finished; got {self.text!r}"
            self.step()
        return self.text

    def close(self) -> None:
        self.ks.close()


def run_cells(followers: list[Follower], code: str) -> None:
    """One cell per kernel, sent by its first client and followed by all of them (iopub
    goes to every websocket of a kernel), running in every kernel at once when this returns."""
    started: dict[str, str] = {}
    for follower in followers:
        kernel_id = follower.args[1]
        if kernel_id in started:
            follower.msg_id = started[kernel_id]
        else:
            started[kernel_id] = follower.start(code)
    for follower in followers:
        follower.wait_running()


def finish_all(followers: list[Follower], timeout: float = 120) -> None:
    """Read every follower round robin until every cell is done (none of them stalls the others)."""
    deadline = time.monotonic() + timeout
    while not all(f.done for f in followers):
        assert time.monotonic() < deadline, [f.text[-20:] for f in followers]
        for follower in followers:
            if not follower.done:
                follower.step(0.05)


def workers(master_pid: int) -> set[int]:
    """The gunicorn workers of `master_pid` (the kernel host is a child too: left out)."""
    found = set()
    for child in psutil.Process(master_pid).children():
        try:
            if "nbflask.host.server" not in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:  # exited meanwhile
            pass
    return found


def worker_of(master_pid: int, port: int, client_port: int) -> int | None:
    """The worker holding the TCP connection whose client end is `client_port`."""
    for pid in workers(master_pid):
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        if any(c.laddr and c.laddr.port == port and c.raddr and c.raddr.port == client_port
               for c in connections):
            return pid
    return None


def wait_workers(master_pid: int, count: int, without: set[int] = frozenset(),
                 timeout: float = 60) -> set[int]:
    """Until the master has `count` workers, none of them in `without`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = workers(master_pid)
        if len(current) == count and not current & set(without):
            return current
        time.sleep(0.2)
    raise AssertionError(f"workers {workers(master_pid)}, wanted {count} new ones besides {without}")
