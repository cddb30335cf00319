"""No kernel outlives its server: checked by pid for `nbflask run` and `flask --app nbflask run`."""

from __future__ import annotations

import json
import os
import signal

import pytest
from kernelapp import pid_alive, wait_gone
from kernelws import KernelSocket
from live import TOKEN, start_flask, start_nbflask

pytestmark = [pytest.mark.slow, pytest.mark.kernel_transports]


def kernel_pid(server) -> int:
    kernel_id = server.session().post(server.url + "api/kernels").json()["id"]
    with KernelSocket(server.url, kernel_id, TOKEN) as ks:
        return int(ks.execute("import os; print(os.getpid())").stream("stdout"))


def host_pid(runtime, server) -> int:
    """The pid of the kernel host of `server` (files keyed by the server's pid)."""
    return json.loads((runtime / f"kernel-host-{server.proc.pid}.json").read_text())["pid"]


@pytest.fixture
def runtime(tmp_path):
    folder = tmp_path / "runtime"
    folder.mkdir(mode=0o700)
    return folder


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_nbflask_run_stops_its_kernels(tmp_path, runtime, sig):
    server = start_nbflask(tmp_path, env={"NBFLASK_RUNTIME_DIR": str(runtime)})
    try:
        kernels = [kernel_pid(server), kernel_pid(server)]
        host = host_pid(runtime, server)
        assert all(pid_alive(pid) for pid in [*kernels, host])
        os.kill(server.proc.pid, sig)
        server.proc.wait(30)
        assert all(wait_gone(pid) for pid in [*kernels, host])
        assert [name for name in os.listdir(runtime) if name.startswith("kernel-")] == []
    finally:
        server.stop()
    assert "stopping its kernels" not in server.log()  # stopped in order, not by the parent watch


def test_kernels_die_with_a_server_killed_by_sigkill(tmp_path, runtime):
    server = start_nbflask(tmp_path, env={"NBFLASK_RUNTIME_DIR": str(runtime)})
    try:
        kernel = kernel_pid(server)
        host = host_pid(runtime, server)
        server.proc.kill()  # only the server: its host must notice by itself
        server.proc.wait(10)
        assert wait_gone(kernel) and wait_gone(host)
    finally:
        server.stop()
    assert "stopping its kernels" in server.log()


def test_flask_run_starts_the_host_and_its_kernels_end_with_it(tmp_path, runtime):
    server = start_flask(tmp_path, env={"NBFLASK_RUNTIME_DIR": str(runtime)})
    try:
        kernel = kernel_pid(server)
        host = host_pid(runtime, server)
        os.kill(server.proc.pid, signal.SIGTERM)
        server.proc.wait(10)
        assert wait_gone(kernel) and wait_gone(host)
    finally:
        server.stop()


def test_two_servers_of_one_user_have_their_own_hosts_and_kernels(tmp_path, runtime):
    env = {"NBFLASK_RUNTIME_DIR": str(runtime)}
    first = start_nbflask(tmp_path / "a", env=env)
    second = start_nbflask(tmp_path / "b", env=env)
    try:
        kernel = kernel_pid(first)
        assert second.session().get(second.url + "api/kernels").json() == []
        other = kernel_pid(second)
        assert host_pid(runtime, first) != host_pid(runtime, second)
        first.stop()
        assert wait_gone(kernel) and pid_alive(other)
        assert len(second.session().get(second.url + "api/kernels").json()) == 1
    finally:
        first.stop()
        second.stop()
