"""`/api/kernels` with real ipykernel processes behind a real kernel host."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest
import zmq
from kernelapp import PYTHON, install_spec, kernel_client, wait_gone

from nbflask import runtime
from nbflask.clock import parse_isoformat


@pytest.fixture
def kclient(make_app):
    with kernel_client(make_app) as client:
        yield client


def test_start_list_get_interrupt_restart_delete(kclient, root_dir):
    started = kclient.post("/api/kernels", json={"name": "python3"})
    assert started.status_code == 201
    model = started.get_json()
    assert set(model) >= {"id", "name", "last_activity", "execution_state", "connections"}
    assert model["name"] == "python3" and model["execution_state"] == "idle" and model["connections"] == 0
    assert started.headers["Location"] == f"/api/kernels/{model['id']}"
    assert [k["id"] for k in kclient.get("/api/kernels").get_json()] == [model["id"]]
    assert kclient.get(f"/api/kernels/{model['id']}").get_json()["id"] == model["id"]
    assert kclient.post(f"/api/kernels/{model['id']}/interrupt").status_code == 204
    restarted = kclient.post(f"/api/kernels/{model['id']}/restart")
    assert restarted.status_code == 200 and restarted.get_json()["id"] == model["id"]
    status = kclient.get("/api/status").get_json()
    assert status["kernels"] == 1
    kernel_activity = kclient.get(f"/api/kernels/{model['id']}").get_json()["last_activity"]
    assert parse_isoformat(status["last_activity"]) >= parse_isoformat(kernel_activity)
    assert kclient.delete(f"/api/kernels/{model['id']}").status_code == 204
    assert kclient.get("/api/kernels").get_json() == []
    assert kclient.get(f"/api/kernels/{model['id']}").status_code == 404


def test_default_kernel_when_no_name(kclient):
    assert kclient.post("/api/kernels").get_json()["name"] == "python3"


def test_unknown_ids_are_404_json(kclient):
    for method, path in [("get", "/api/kernels/nope"), ("delete", "/api/kernels/nope"),
                         ("post", "/api/kernels/nope/interrupt"), ("post", "/api/kernels/nope/restart")]:
        response = getattr(kclient, method)(path)
        assert response.status_code == 404, path
        assert "nope" in response.get_json()["message"]


def test_unknown_kernelspec_is_404_and_bad_bodies_400(kclient):
    response = kclient.post("/api/kernels", json={"name": "no-such-kernel"})
    assert response.status_code == 404 and "no-such-kernel" in response.get_json()["message"]
    assert kclient.post("/api/kernels", data="[", content_type="application/json").status_code == 400
    assert kclient.post("/api/kernels", json={"name": 3}).status_code == 400


def test_status_does_not_start_the_kernel_host(kclient):
    assert kclient.get("/api/status").get_json()["kernels"] == 0
    assert kclient.application.extensions["nbflask"].kernels.process is None


def test_kernel_that_never_answers_fails_within_the_timeout_and_is_killed(make_app, tmp_path, monkeypatch):
    pid_file = tmp_path / "pid"
    code = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"
    install_spec(tmp_path / "jp", "sleeper", [PYTHON, "-c", code, str(pid_file)])
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jp"))
    with kernel_client(make_app, {"kernels": {"startup_timeout": 2}}) as client:
        started = time.monotonic()
        response = client.post("/api/kernels", json={"name": "sleeper"})
        assert response.status_code == 504
        assert "did not answer within 2 s" in response.get_json()["message"]
        assert time.monotonic() - started < 30
        assert wait_gone(int(pid_file.read_text()), timeout=5)
        assert client.get("/api/kernels").get_json() == []


def test_kernel_that_exits_at_start_reports_its_exit_code(make_app, tmp_path, monkeypatch):
    install_spec(tmp_path / "jp", "broken", [PYTHON, "-c", "raise SystemExit(3)"])
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jp"))
    with kernel_client(make_app) as client:
        response = client.post("/api/kernels", json={"name": "broken"})
        assert response.status_code == 500
        assert "exited with code 3" in response.get_json()["message"]


def test_idle_kernels_are_culled(make_app):
    with kernel_client(make_app, {"kernels": {"cull_idle_timeout": 1, "cull_interval": 1}}) as client:
        kernel_id = client.post("/api/kernels").get_json()["id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and client.get(f"/api/kernels/{kernel_id}").status_code == 200:
            time.sleep(0.2)
        assert client.get(f"/api/kernels/{kernel_id}").status_code == 404


def test_closing_the_app_stops_the_host_and_its_kernels(make_app):
    with kernel_client(make_app) as client:
        client.post("/api/kernels")
        host = client.application.extensions["nbflask"].kernels.process
        assert host is not None and host.poll() is None
    assert host.poll() is not None


def test_connection_files_and_sockets_are_private_and_the_key_stays_inside(kclient):
    model = kclient.post("/api/kernels").get_json()
    folder = runtime.runtime_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    connection_file = folder / f"kernel-{model['id']}.json"
    assert stat.S_IMODE(connection_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder / f"kernel-host-{os.getpid()}.ipc").st_mode) & 0o077 == 0
    key = json.loads(connection_file.read_text())["key"]
    assert len(key) >= 32
    for path in ("/api/kernels", f"/api/kernels/{model['id']}", "/api/sessions", "/api/kernelspecs"):
        assert key not in kclient.get(path).get_data(as_text=True)


def test_the_kernel_host_refuses_malformed_requests(kclient):
    kclient.get("/api/kernels")  # starts the host
    context = zmq.Context.instance()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"ipc://{runtime.runtime_dir() / f'kernel-host-{os.getpid()}.ipc'}")
    try:
        for body in (b"not json", b'{"op": "no-such-op"}', b'{"op": "get_kernel", "args": 3}'):
            sock.send(body)
            assert sock.poll(10_000)
            reply = json.loads(sock.recv())
            assert reply["ok"] is False and reply["status"] == 400
        assert kclient.get("/api/kernels").status_code == 200
    finally:
        sock.close()
