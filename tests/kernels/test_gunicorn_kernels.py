"""Kernels shared by gunicorn's gevent workers through the one kernel host."""

from __future__ import annotations

import json
import os
import time

import pytest
import requests
from kernelapp import wait_gone
from kernelws import SLEEP, KernelSocket, replies_to, sleeping
from live import TOKEN, fresh_request, start_gunicorn, workers_serving

pytestmark = [pytest.mark.slow, pytest.mark.kernel_transports]
WORKERS = 3


def test_a_kernel_started_through_one_worker_is_used_through_all(tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    server = start_gunicorn(tmp_path, workers=WORKERS, env={"NBFLASK_RUNTIME_DIR": str(runtime)})
    sockets: list[KernelSocket] = []
    try:
        kernel_id = fresh_request("POST", server.url + "api/kernels").json()["id"]
        for _ in range(40):
            assert fresh_request("GET", server.url + f"api/kernels/{kernel_id}").status_code == 200
        # Websockets stay open: keep opening until they sit on at least two workers.
        deadline = time.monotonic() + 60
        while len(workers_serving(server.proc.pid, server.port)) < 2 or len(sockets) < 3:
            assert time.monotonic() < deadline, "connections never spread over two workers"
            sockets.append(KernelSocket(server.url, kernel_id, TOKEN, v1=len(sockets) % 2 == 0))
        assert len(workers_serving(server.proc.pid, server.port)) >= 2
        for number, ks in enumerate(sockets):
            ks.pending.append(ks.recv())  # relaying, so attached to the kernel
            assert ks.execute(f"value = {number}; print(value)").stream("stdout") == f"{number}\n"
        listed = fresh_request("GET", server.url + "api/kernels").json()
        assert listed[0]["connections"] == len(sockets)
        pid = int(sockets[0].execute("import os; print(os.getpid())").stream("stdout"))

        msg_id = sockets[-1].send("shell", "execute_request", {"code": SLEEP})
        sockets[-1].wait_for(sleeping(msg_id))
        assert fresh_request("POST", server.url + f"api/kernels/{kernel_id}/interrupt").status_code == 204
        reply = sockets[-1].wait_for(replies_to(msg_id))
        assert reply["content"]["ename"] == "KeyboardInterrupt"

        restarted = fresh_request("POST", server.url + f"api/kernels/{kernel_id}/restart")
        assert restarted.status_code == 200
        assert wait_gone(pid)
        for ks in sockets:
            out = ks.execute("print('value' in globals())").stream("stdout")
            assert out == "False\n"  # one fresh kernel, seen through every worker
        pid = int(sockets[0].execute("import os; print(os.getpid())").stream("stdout"))
    finally:
        for ks in sockets:
            ks.close()
        host_pid = json.loads((runtime / f"kernel-host-{server.proc.pid}.json").read_text())["pid"]
        server.stop()
    assert wait_gone(host_pid) and wait_gone(pid)
    assert [name for name in os.listdir(runtime) if name.startswith("kernel-")] == []
    assert "stopping its kernels" not in server.log()  # stopped by on_exit, not by accident


def test_gunicorn_shares_one_token_across_workers(tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    server = start_gunicorn(tmp_path, {"auth": {"token": "auto"}}, workers=2,
                            env={"NBFLASK_RUNTIME_DIR": str(runtime)})
    try:
        log = server.log()
        token = log.split("every worker accepts the token ", 1)[1].split()[0]
        for _ in range(10):
            response = requests.get(server.url + "api/status", headers={
                "Authorization": f"token {token}", "Connection": "close"}, timeout=30)
            assert response.status_code == 200
    finally:
        server.stop()
