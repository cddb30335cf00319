"""Web workers come and go under gunicorn (gevent workers, TLS); kernels and cells do not notice.

Each test runs real gunicorn with a certificate made at run time, real kernels running cells
that print for seconds, and clients that reconnect with their session id when their websocket
is cut. They must end up with every line of output, once and in order, from kernels that kept
running (same process) throughout.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest
import requests
import worklife
from kernelapp import wait_gone
from live import TOKEN, start_gunicorn
from waiting import wait_until
from worklife import LINES, Follower, counting, finish_all, numbers, run_cells, worker_of, workers

pytestmark = pytest.mark.slow
WORKERS = 3
REPO = Path(__file__).resolve().parents[2]


def kernel_pid(kernel_id: str) -> int:
    """The process of the kernel, found by its connection file on its command line."""
    for proc in psutil.process_iter(["cmdline"]):
        if any(f"kernel-{kernel_id}.json" in part for part in proc.info["cmdline"] or ()):
            return proc.pid
    raise AssertionError(f"no process for kernel {kernel_id}")


def start_kernels(server, count: int) -> list[str]:
    client = server.session()
    return [client.post(server.url + "api/kernels", json={}, timeout=90).json()["id"] for _ in range(count)]


def spread_followers(server, kernel_ids: list[str], count: int) -> list[Follower]:
    """`count` clients over the kernels, opened until they sit on at least two workers."""
    followers: list[Follower] = []
    deadline = time.monotonic() + 60
    while len(followers) < count or len({worker_of(server.proc.pid, server.port, f.local_port)
                                         for f in followers}) < 2:
        assert time.monotonic() < deadline, "connections never spread over two workers"
        followers.append(Follower(server.url, kernel_ids[len(followers) % len(kernel_ids)], TOKEN,
                                  str(server.cert)))
    return followers


def host_pid(server) -> int:
    runtime = os.environ["NBFLASK_RUNTIME_DIR"]
    return json.loads(open(f"{runtime}/kernel-host-{server.proc.pid}.json").read())["pid"]


def fresh_get(server, path: str) -> requests.Response:
    """A request on a new TCP connection, so any worker may take it."""
    return requests.get(server.url + path, headers={"Authorization": f"token {TOKEN}", "Connection": "close"},
                        verify=str(server.cert), timeout=60)


def test_a_killed_worker_is_replaced_and_its_clients_carry_on(tmp_path):
    with start_gunicorn(tmp_path, tls=True, workers=WORKERS) as server:
        kernel_ids = start_kernels(server, 2)
        pids = {kernel_id: kernel_pid(kernel_id) for kernel_id in kernel_ids}
        followers = spread_followers(server, kernel_ids, 4)
        run_cells(followers, counting())
        victim = worker_of(server.proc.pid, server.port, followers[0].local_port)
        os.kill(victim, signal.SIGKILL)
        assert wait_gone(victim)
        finish_all(followers)
        assert [f.text for f in followers] == [numbers()] * len(followers)  # none lost, none twice
        assert followers[0].reconnects >= 1
        worklife.wait_workers(server.proc.pid, WORKERS, {victim})
        assert {kernel_id: kernel_pid(kernel_id) for kernel_id in kernel_ids} == pids
        for follower in followers:  # the kernels kept their state, too
            follower.reconnect()
            assert follower.ks.execute("print(i)").stream("stdout") == f"{LINES - 1}\n"
            follower.close()


def test_max_requests_recycling_keeps_kernels_and_output(tmp_path):
    args = ["--max-requests", "30"]
    with start_gunicorn(tmp_path, tls=True, workers=WORKERS, args=args) as server:
        kernel_ids = start_kernels(server, 2)
        pids = {kernel_id: kernel_pid(kernel_id) for kernel_id in kernel_ids}
        before = workers(server.proc.pid)
        followers = spread_followers(server, kernel_ids, 4)
        run_cells(followers, counting())
        deadline = time.monotonic() + 90
        while workers(server.proc.pid) & before:  # until every worker reached its limit
            assert time.monotonic() < deadline, "gunicorn recycled no worker"
            assert fresh_get(server, "api/status").status_code == 200
        finish_all(followers)
        assert [f.text for f in followers] == [numbers()] * len(followers)
        assert any(f.reconnects for f in followers)  # cut while the cells ran
        assert {kernel_id: kernel_pid(kernel_id) for kernel_id in kernel_ids} == pids
        assert "max_requests" in server.log() or "Autorestarting worker" in server.log()
        for follower in followers:
            follower.close()


def test_sighup_reloads_every_worker_and_keeps_every_kernel(tmp_path):
    with start_gunicorn(tmp_path, tls=True, workers=WORKERS) as server:
        kernel_ids = start_kernels(server, 2)
        pids = {kernel_id: kernel_pid(kernel_id) for kernel_id in kernel_ids}
        host = host_pid(server)
        before = workers(server.proc.pid)
        followers = spread_followers(server, kernel_ids, 4)
        run_cells(followers, counting())
        os.kill(server.proc.pid, signal.SIGHUP)
        finish_all(followers)
        assert [f.text for f in followers] == [numbers()] * len(followers)
        assert all(f.reconnects >= 1 for f in followers)
        worklife.wait_workers(server.proc.pid, WORKERS, before)
        assert host_pid(server) == host
        assert {kernel_id: kernel_pid(kernel_id) for kernel_id in kernel_ids} == pids
        listed = fresh_get(server, "api/kernels").json()
        assert sorted(k["id"] for k in listed) == sorted(kernel_ids)
        for follower in followers:
            follower.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_stopping_gunicorn_stops_its_kernels_and_orphans_nothing(tmp_path, sig):
    with start_gunicorn(tmp_path, tls=True, workers=WORKERS) as server:
        kernel_ids = start_kernels(server, 2)
        pids = [kernel_pid(kernel_id) for kernel_id in kernel_ids]
        host = host_pid(server)
        children = workers(server.proc.pid)
        followers = spread_followers(server, kernel_ids, 2)
        run_cells(followers, counting(600))
        os.kill(server.proc.pid, sig)
        server.proc.wait(25)  # open websockets do not hold the workers for the graceful timeout (30 s)
        # before the test's own clean-up (which kills the process group) gets a chance
        for pid in (host, *pids, *children):
            assert wait_gone(pid), f"process {pid} outlived gunicorn"
        for follower in followers:
            follower.close()
    runtime = os.environ["NBFLASK_RUNTIME_DIR"]
    assert [name for name in os.listdir(runtime) if name.startswith("kernel-")] == []


def test_a_worker_told_to_stop_while_it_boots_stops_once_booted(tmp_path):
    """gunicorn stopped just as it replaced a worker: the new worker, still booting, gets the
    stop and acts on it once it can, instead of serving on until the graceful timeout.

    A gunicorn config of the test's own, on top of the project's, holds each new worker in
    its boot (after gevent's patching, before its signal handlers) while the file `hold`
    exists, and says so in `booting`."""
    hold, booting = tmp_path / "hold", tmp_path / "booting"
    conf = tmp_path / "held.conf.py"
    conf.write_text(
        f"exec(open({str(REPO / 'config' / 'gunicorn.conf.py')!r}).read())\n"
        "_post_fork = post_fork\n\n\n"
        "def post_fork(server, worker):\n"
        "    import os, time\n"
        "    _post_fork(server, worker)\n"
        "    patch = worker.patch\n\n"
        "    def held_patch():\n"
        "        patch()\n"
        f"        while os.path.exists({str(hold)!r}):\n"
        f"            open({str(booting)!r}, 'w').close()\n"
        "            time.sleep(0.01)\n\n"
        "    worker.patch = held_patch\n")
    args = ["-c", str(conf), "--graceful-timeout", "120"]
    with start_gunicorn(tmp_path, workers=1, args=args) as server:
        (first,) = workers(server.proc.pid)
        hold.touch()
        os.kill(first, signal.SIGKILL)  # gunicorn forks a new worker, held in its boot
        wait_until(booting.exists, timeout=60, what="the new worker booting")
        server.proc.terminate()
        wait_until(lambda: "Handling signal: term" in server.log(), what="gunicorn passing the stop on")
        hold.unlink()
        assert server.proc.wait(60) == 0  # not the graceful timeout's SIGKILL, 120 s on
