"""The kernel host as a service of its own (`nbflask kernel-host`, `kernels.host: service`).

Both services run as their systemd units in config/ say (their ExecStart lines, with this
checkout's paths): restarting the web tier keeps the kernels and every line of a running
cell's output; a restarted kernel host adopts the kernels that still run and reports the others.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from kernelapp import wait_gone
from kernelws import KernelSocket
from live import BIN, TOKEN, LiveServer, _deployment, write_config
from test_worker_life import kernel_pid, start_kernels
from tools import needs_package, program
from worklife import Follower, counting, finish_all, numbers, run_cells

pytestmark = pytest.mark.slow
CONFIG = Path(__file__).resolve().parents[2] / "config"


def unit_lines(unit: str, key: str) -> list[str]:
    text = (CONFIG / unit).read_text().replace("\\\n", " ")
    return [line.removeprefix(f"{key}=") for line in text.splitlines() if line.startswith(f"{key}=")]


def exec_start(unit: str, replacements: dict[str, str]) -> list[str]:
    """The ExecStart command of a unit in config/, with its paths replaced by this test's."""
    (command,) = unit_lines(unit, "ExecStart")
    for old, new in {"/srv/nbflask/venv/bin/": f"{BIN}/", **replacements}.items():
        command = command.replace(old, new)
    return shlex.split(command)


def unit_environment(unit: str) -> dict[str, str]:
    """The unit's Environment= settings, but for the paths (the test's own runtime folder)."""
    found = dict(line.split("=", 1) for line in unit_lines(unit, "Environment"))
    return {name: value for name, value in found.items()
            if name not in ("NBFLASK_RUNTIME_DIR", "NBFLASK_CONFIG")}


class Deployment:
    """One settings file for both services, a runtime folder, a port, a certificate."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        merged, self.cert, self.port = _deployment(tmp_path, None, tls=True)  # the units say `service`
        merged["server"].pop("certfile")
        self.config = write_config(tmp_path, merged)
        self.runtime = Path(os.environ["NBFLASK_RUNTIME_DIR"])
        self.host: subprocess.Popen | None = None

    def start_host(self) -> subprocess.Popen:
        unit = "nbflask-kernel-host.service"
        argv = exec_start(unit, {"/srv/nbflask/nbflask.yaml": str(self.config)})
        log = open(self.tmp_path / "host.log", "ab")
        self.host = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.tmp_path, start_new_session=True,
                                     env={**os.environ, **unit_environment(unit)})
        deadline = time.monotonic() + 60
        while self.host_pid() != self.host.pid:
            assert self.host.poll() is None, self.host_log()
            assert time.monotonic() < deadline, "the kernel host service did not start"
            time.sleep(0.1)
        return self.host

    def host_pid(self) -> int | None:
        try:
            return json.loads((self.runtime / "kernel-host-service.json").read_text())["pid"]
        except (OSError, ValueError, KeyError):
            return None

    def host_log(self) -> str:
        return (self.tmp_path / "host.log").read_text(errors="replace")

    def start_web(self) -> LiveServer:
        """The web unit's gunicorn, serving TLS itself (as the unit's comment says how)."""
        unit = "nbflask-web.service"
        argv = exec_start(unit, {"/srv/nbflask/src/config/": f"{CONFIG}/",
                                 "127.0.0.1:8888": f"127.0.0.1:{self.port}"})
        argv[-1:-1] = ["--certfile", str(self.cert), "--keyfile", str(self.cert)]
        return LiveServer(argv, f"https://127.0.0.1:{self.port}/", cert=self.cert, cwd=self.tmp_path,
                          env={**unit_environment(unit), "NBFLASK_CONFIG": str(self.config)},
                          log=self.tmp_path / "web.log")

    def stop_host(self, sig: int = signal.SIGTERM) -> None:
        if self.host is not None and self.host.poll() is None:
            self.host.send_signal(sig)
            self.host.wait(30)


def kernel_files(runtime: Path) -> list[str]:
    return sorted(name for name in os.listdir(runtime) if name.startswith("kernel-"))


def test_restarting_the_web_tier_keeps_kernels_and_a_running_cell_loses_no_output(tmp_path):
    deployment = Deployment(tmp_path)
    host = deployment.start_host()
    web = deployment.start_web()
    try:
        kernel_ids = start_kernels(web, 2)
        pids = {kernel_id: kernel_pid(kernel_id) for kernel_id in kernel_ids}
        followers = [Follower(web.url, kernel_ids[n % 2], TOKEN, str(web.cert)) for n in range(4)]
        run_cells(followers, counting(200))  # 20 s: longer than the web tier's restart
        web.stop()  # `systemctl restart nbflask-web`: an upgrade, say
        assert host.poll() is None
        assert {kernel_id: kernel_pid(kernel_id) for kernel_id in kernel_ids} == pids
        web = deployment.start_web()
        finish_all(followers)
        assert [f.text for f in followers] == [numbers(200)] * len(followers)
        assert all(f.reconnects >= 1 for f in followers)
        assert sorted(k["id"] for k in web.get("api/kernels").json()) == sorted(kernel_ids)
        for follower in followers:  # the same kernels, state and all
            assert follower.ks.execute("print(i)").stream("stdout") == "199\n"
            follower.close()
    finally:
        web.stop()
        deployment.stop_host()
    assert host.returncode == 0
    for pid in pids.values():
        assert wait_gone(pid), "stopping the kernel host service left a kernel running"
    assert kernel_files(deployment.runtime) == []


def test_a_restarted_kernel_host_adopts_live_kernels_and_reports_lost_ones(tmp_path):
    deployment = Deployment(tmp_path)
    first = deployment.start_host()
    web = deployment.start_web()
    try:
        kept, lost, frozen = start_kernels(web, 3)
        kept_pid, lost_pid, frozen_pid = kernel_pid(kept), kernel_pid(lost), kernel_pid(frozen)
        session = web.session().post(web.url + "api/sessions", timeout=60, json={
            "path": "work.ipynb", "name": "work.ipynb", "type": "notebook", "kernel": {"id": kept}}).json()
        ks = KernelSocket(web.url, kept, TOKEN, cert=str(web.cert))
        assert ks.execute("x = 42; print(x)").stream("stdout") == "42\n"

        first.kill()  # a crash, or the OOM killer: its kernels live on
        first.wait()
        with pytest.raises(ConnectionError, match="kernel host restarting"):
            while True:
                message = ks.recv(timeout=20)  # the kernel lives: no `dead` status
                assert message["content"].get("execution_state") != "dead"
        down = web.get("api/kernels")
        assert down.status_code == 503 and "kernel host service is not running" in down.json()["message"]
        os.kill(lost_pid, signal.SIGKILL)  # a kernel that ends while no host runs
        os.kill(frozen_pid, signal.SIGSTOP)  # one that runs but cannot answer
        assert wait_gone(lost_pid) and not wait_gone(kept_pid, timeout=1)

        second = deployment.start_host()  # systemd's Restart=on-failure
        assert second.pid != first.pid
        assert [k["id"] for k in web.get("api/kernels").json()] == [kept]
        gone = web.get(f"api/kernels/{lost}")
        assert gone.status_code == 404
        assert "lost while no kernel host ran" in gone.json()["message"]
        assert "process had exited" in gone.json()["message"]
        assert f"kernel {lost}: it was lost while no kernel host ran" in deployment.host_log()
        stuck = web.get(f"api/kernels/{frozen}").json()["message"]
        assert "did not answer kernel_info within 10 s, so it was stopped" in stuck
        assert wait_gone(frozen_pid)
        adopted = f"kernel {kept} (pid {kept_pid}), left by kernel host {first.pid}, adopted"
        assert adopted in deployment.host_log()
        assert kernel_pid(kept) == kept_pid
        sessions = web.get("api/sessions").json()  # the notebook still knows its kernel
        assert [(s["id"], s["path"], s["type"], s["kernel"]["id"]) for s in sessions] == [
            (session["id"], "work.ipynb", "notebook", kept)]
        with KernelSocket(web.url, kept, TOKEN, session_id=ks.session_id, cert=str(web.cert)) as again:
            assert again.execute("print(x)").stream("stdout") == "42\n"  # the same kernel
        interrupted = web.session().post(web.url + f"api/kernels/{kept}/interrupt", timeout=30)
        assert interrupted.status_code == 204

        unit = "nbflask-kernel-host.service"
        second_try = subprocess.run(exec_start(unit, {"/srv/nbflask/nbflask.yaml": str(deployment.config)}),
                                    env={**os.environ, **unit_environment(unit)}, capture_output=True,
                                    text=True, timeout=60)
        assert second_try.returncode != 0
        assert f"another kernel host service runs (pid {second.pid})" in second_try.stderr
        assert deployment.host_pid() == second.pid
    finally:
        web.stop()
        deployment.stop_host()
    assert wait_gone(kept_pid), "the adopted kernel outlived the kernel host's stop"
    assert kernel_files(deployment.runtime) == []


def test_the_kernel_host_command_needs_service_settings(tmp_path):
    config = tmp_path / "own.yaml"
    config.write_text("kernels:\n  host: own\n")
    result = subprocess.run([str(BIN / "nbflask"), "kernel-host", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "kernels.host is 'own'" in result.stderr and "set it to 'service'" in result.stderr


def test_web_workers_without_the_service_host_say_how_to_start_it(tmp_path):
    deployment = Deployment(tmp_path)
    with deployment.start_web() as web:
        answer = web.get("api/kernels")
        assert answer.status_code == 503
        assert "`nbflask kernel-host --config FILE`" in answer.json()["message"]
        assert web.get("api/status").status_code == 200
        assert requests.get(web.url + "api", verify=str(web.cert), timeout=30).status_code == 200
    assert kernel_files(deployment.runtime) == []


@needs_package(program("systemd-analyze"), "systemd")
def test_the_systemd_units_verify(tmp_path):
    """`systemd-analyze verify` on both units, with this machine's paths to the programs."""
    for unit in ("nbflask-kernel-host.service", "nbflask-web.service"):
        text = (CONFIG / unit).read_text().replace("/srv/nbflask/venv/bin/", f"{BIN}/")
        (tmp_path / unit).write_text(text)
    units = [str(path) for path in sorted(tmp_path.glob("*.service"))]
    result = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "nbflask" not in result.stderr, result.stderr  # no warning about our units
