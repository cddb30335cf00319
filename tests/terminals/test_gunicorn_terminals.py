"""Terminals under gunicorn's gevent workers: the pty lives in the kernel host, so any worker
serves it and a worker's death costs the shell nothing."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
from kernelapp import wait_gone
from live import TOKEN, fresh_request, start_gunicorn, workers_serving
from termws import TerminalSocket

pytestmark = pytest.mark.slow
CONFIG = {"terminals": {"shell_command": ["bash", "--norc", "--noprofile"], "env": {"PS1": "$ "}}}


def test_a_terminal_survives_its_worker_being_killed(tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    server = start_gunicorn(tmp_path, CONFIG, workers=2, env={"NBFLASK_RUNTIME_DIR": str(runtime)})
    try:
        name = fresh_request("POST", server.url + "api/terminals").json()["name"]
        first = TerminalSocket(server.url, name, TOKEN)
        first.type("echo shell-pid-$$; echo before-$((20+1))\r")
        shell = int(first.wait_for(r"shell-pid-(\d+)\r\n").group(1))
        first.wait_for(r"before-21\r\n")
        (worker,) = workers_serving(server.proc.pid, server.port)  # the only open connection
        os.kill(worker, signal.SIGKILL)
        assert wait_gone(worker)
        first.wait_closed()
        assert psutil.pid_exists(shell)
        deadline = time.monotonic() + 60
        while len(psutil.Process(server.proc.pid).children()) < 3:  # two workers and the host
            assert time.monotonic() < deadline, "gunicorn did not replace the worker"
            time.sleep(0.1)

        with TerminalSocket(server.url, name, TOKEN) as again:
            assert again.recv() == ["setup", {}]
            again.recv()  # the scrollback
            assert "before-21\r\n" in again.output
            again.output = ""  # from here on, only what the shell says now
            again.type("echo after-$((20+2)); echo shell-pid-$$\r")
            again.wait_for(r"after-22\r\n")
            assert int(again.wait_for(r"shell-pid-(\d+)\r\n").group(1)) == shell
            assert fresh_request("GET", server.url + "api/terminals").json()[0]["name"] == name
    finally:
        host = [c.pid for c in psutil.Process(server.proc.pid).children()
                if "nbflask.host.server" in " ".join(c.cmdline())]
        server.stop()
    assert wait_gone(shell) and all(wait_gone(pid) for pid in host)  # shutdown ends the shell
