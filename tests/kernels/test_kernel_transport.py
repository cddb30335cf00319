"""Local kernels over unix sockets (the default) or TCP ports (`kernels.transport`)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil
import pytest
import requests
from kernelapp import ThreadedServer, close_app, kernel_client, wait_gone
from kernelws import KernelSocket
from live import TOKEN
from waiting import wait_until

from nbflask import runtime

pytestmark = pytest.mark.slow


def kernel_processes() -> list[psutil.Process]:
    """The ipykernel processes of this test's kernel host (its children)."""
    infos = runtime.runtime_dir().glob("kernel-host-*.json")
    hosts = [int(json.loads(path.read_text())["pid"]) for path in infos]
    found = []
    for child in (child for pid in hosts for child in psutil.Process(pid).children()):
        try:
            if "ipykernel" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # gone, or a zombie not reaped yet
            pass
    return found


def connection(kernel_id: str) -> dict:
    return json.loads((runtime.runtime_dir() / f"kernel-{kernel_id}.json").read_text())


def sockets_of(info: dict) -> list[Path]:
    return [Path(f"{info['ip']}-{info[name]}") for name in
            ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")]


PIPE_PORT = "import sys; print(sys.stdout.pub_thread._pipe_port)"


def tcp_listeners(process: psutil.Process) -> set[int]:
    return {c.laddr.port for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def served_kernel(make_app, config: dict | None = None):
    """An app over real HTTP (threads), one kernel, its process, connection, and a websocket."""
    app = make_app(config)
    server = ThreadedServer(app)
    kernel_id = requests.post(server.url + "api/kernels", headers={"Authorization": f"token {TOKEN}"},
                              timeout=60).json()["id"]
    [process] = kernel_processes()
    return app, server, process, connection(kernel_id), KernelSocket(server.url, kernel_id, TOKEN)


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_an_ipc_kernel_listens_on_no_tcp_port_of_ours(make_app, transport):
    """Over ipc the only TCP listener left is ipykernel's own: the loopback pipe its IOPub
    thread opens, whatever the transport, for output of forked subprocesses (ipykernel 7,
    iostream.py; messages on it must carry a random 16-byte id)."""
    app, server, process, info, ws = served_kernel(make_app, {"kernels": {"transport": transport}})
    try:
        pipe = int(ws.execute(PIPE_PORT).stream("stdout"))
        channels = {info[f"{name}_port"] for name in ("shell", "iopub", "stdin", "control", "hb")}
        if transport == "ipc":
            assert tcp_listeners(process) == {pipe}
            listening = {c.laddr for c in process.net_connections(kind="unix") if c.laddr}
            assert {str(path) for path in sockets_of(info)} <= listening
            assert {path.parent for path in sockets_of(info)} == {runtime.runtime_dir()}
            assert oct(runtime.runtime_dir().stat().st_mode & 0o777) == "0o700"
        else:
            assert info["ip"] == "127.0.0.1" and tcp_listeners(process) == channels | {pipe}
    finally:
        ws.close()
        server.stop()
        close_app(app)


def test_socket_files_go_when_a_kernel_stops_restarts_dies_or_the_host_stops(make_app):
    app_config = {"kernels": {"transport": "ipc"}}
    with kernel_client(make_app, app_config) as client:
        first = client.post("/api/kernels", json={}).get_json()
        info = connection(first["id"])
        assert wait_until(lambda: all(path.exists() for path in sockets_of(info)))  # bound once started
        assert client.delete(f"/api/kernels/{first['id']}").status_code == 204
        assert not any(path.exists() for path in sockets_of(info))

        second = client.post("/api/kernels", json={}).get_json()
        info = connection(second["id"])
        state = lambda: client.get(f"/api/kernels/{second['id']}").get_json()["execution_state"]  # noqa: E731
        assert wait_until(lambda: state() == "idle")
        [process] = kernel_processes()
        os.kill(process.pid, signal.SIGKILL)  # dies; the host restarts it on the same sockets
        assert wait_gone(process.pid)

        def restarted() -> bool:
            return [p.pid for p in kernel_processes()] not in ([], [process.pid]) and state() == "idle"

        assert wait_until(restarted)
        assert all(path.exists() for path in sockets_of(info))
        assert client.post(f"/api/kernels/{second['id']}/restart").status_code == 200
        assert all(path.exists() for path in sockets_of(info))
    assert not any(path.exists() for path in sockets_of(info))  # the host stopped with the app
    assert not list(runtime.runtime_dir().glob("kernel-*"))


def test_a_runtime_folder_too_long_for_unix_sockets_is_an_error_at_start(make_app, tmp_path, monkeypatch):
    from nbflask.config import ConfigError

    long_dir = tmp_path / ("deep" * 20)
    long_dir.mkdir(mode=0o700)
    monkeypatch.setenv("NBFLASK_RUNTIME_DIR", str(long_dir))
    with pytest.raises(ConfigError, match="too long a path for unix sockets.*set NBFLASK_RUNTIME_DIR"):
        make_app()


def test_an_unknown_transport_is_refused_at_start(make_app):
    from nbflask.config import ConfigError

    with pytest.raises(ConfigError, match="kernels.transport: expected 'ipc' or 'tcp', found 'udp'"):
        make_app({"kernels": {"transport": "udp"}})
