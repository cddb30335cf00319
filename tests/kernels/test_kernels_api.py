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

pytestmark = pytest.mark.kernel_transports


@pytest.fixture
def kclient(make_app):
    with kernel_client(make_app) as client:
        yield client


def test_start_list_get_interrupt_restart_delete(kclient, root_dir):
    started = kclient.post("/api/kernels", json={"name": "python3"})
    assert started.status_code == 201
    model = started.get_json()
    assert set(model) >= {"id", "name", "last_activity", "execution_state", "connections"}
    assert model["name"] == "python3" and model["execution_state"] in ("starting", "idle")
    assert model["connections"] == 0
    assert started.headers["Location"] == f"/api/kernels/{model['id']}"
    assert [k["id"] for k in kclient.get("/api/kernels").get_json()] == [model["id"]]
    assert kclient.get(f"/api/kernels/{model['id']}").get_json()["id"] == model["id"]
    assert kclient.post(f"/api/kernels/{model['id']}/interrupt").status_code == 204
    restarted = kclient.post(f"/api/kernels/{model['id']}/restart")
    assert restarted.status_code == 200 and restarted.get_json()["id"] == model["id"]
    # The kernel's activity first: a restarted kernel's own messages may still move it on.
    kernel_activity = kclient.get(f"/api/kernels/{model['id']}").get_json()["last_activity"]
    status = kclient.get("/api/status").get_json()
    assert status["kernels"] == 1
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
    assert kclient.application.extensions["nbflask"].host.process is None


def wait_dead(client, kernel_id: str, timeout: float = 60) -> dict:
    """The kernel's model once it is declared dead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = client.get(f"/api/kernels/{kernel_id}").get_json()
        if model["execution_state"] == "dead":
            return model
        time.sleep(0.1)
    raise AssertionError(f"kernel still {model['execution_state']}")


def test_a_new_kernel_is_answered_while_it_starts_as_jupyter_does(kclient):
    """POST answers once the process runs (Notebook 7 opens the notebook page right after its
    session POST); readiness follows in the background."""
    kernel = kclient.post("/api/kernels", json={}).get_json()
    assert kernel["execution_state"] in ("starting", "idle")
    assert [k["id"] for k in kclient.get("/api/kernels").get_json()] == [kernel["id"]]
    deadline = time.monotonic() + 60
    while kclient.get(f"/api/kernels/{kernel['id']}").get_json()["execution_state"] != "idle":
        assert time.monotonic() < deadline, "never became idle"
        time.sleep(0.1)


def test_kernel_that_never_answers_is_declared_dead_after_the_timeout_and_killed(make_app, tmp_path,
                                                                                 monkeypatch):
    pid_file = tmp_path / "pid"
    code = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"
    install_spec(tmp_path / "jp", "sleeper", [PYTHON, "-c", code, str(pid_file)])
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jp"))
    with kernel_client(make_app, {"kernels": {"startup_timeout": 2}}) as client:
        response = client.post("/api/kernels", json={"name": "sleeper"})
        assert response.status_code == 201
        dead = wait_dead(client, response.get_json()["id"])
        assert "did not answer within 2 s" in dead["reason"]
        assert wait_gone(int(pid_file.read_text()), timeout=5)
        assert client.delete(f"/api/kernels/{dead['id']}").status_code == 204
        assert client.get("/api/kernels").get_json() == []


def test_kernel_that_exits_at_start_reports_its_exit_code(make_app, tmp_path, monkeypatch):
    install_spec(tmp_path / "jp", "broken", [PYTHON, "-c", "raise SystemExit(3)"])
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jp"))
    with kernel_client(make_app) as client:
        response = client.post("/api/kernels", json={"name": "broken"})
        assert response.status_code == 201
        assert "exited with code 3" in wait_dead(client, response.get_json()["id"])["reason"]


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
        host = client.application.extensions["nbflask"].host.process
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


def test_a_client_chosen_kernel_id_starts_that_kernel_and_asking_again_returns_it(kclient):
    kernel_id = "0c5c6ee2-7d3b-4d1e-9a57-1f0d9b2c8e41"
    started = kclient.post("/api/kernels", json={"kernel_id": kernel_id, "name": "python3"})
    assert started.status_code == 201 and started.get_json()["id"] == kernel_id
    assert started.headers["Location"] == f"/api/kernels/{kernel_id}"
    assert (runtime.runtime_dir() / f"kernel-{kernel_id}.json").is_file()
    again = kclient.post("/api/kernels", json={"kernel_id": kernel_id, "name": "no-such-kernel"})
    assert again.status_code == 201 and again.get_json()["id"] == kernel_id  # as Jupyter: the running one
    assert [k["id"] for k in kclient.get("/api/kernels").get_json()] == [kernel_id]
    assert kclient.post(f"/api/kernels/{kernel_id}/restart").get_json()["id"] == kernel_id
    assert kclient.delete(f"/api/kernels/{kernel_id}").status_code == 204
    assert not (runtime.runtime_dir() / f"kernel-{kernel_id}.json").exists()


@pytest.mark.parametrize("kernel_id", ["abc", "", "a-b-c-d", "a-b-c-d-e-f", "../../../x-b-c-d-e",
                                       "a-b-c-d-e/../../x", "a-b-c-d-e\n", "ä-b-c-d-e", 42, ["a-b-c-d-e"],
                                       "a-b-c-d-" + "e" * 200, "host-1-2-3-4"])
def test_a_kernel_id_that_could_not_be_addressed_or_would_name_another_file_is_400(kclient, kernel_id):
    response = kclient.post("/api/kernels", json={"kernel_id": kernel_id})
    assert response.status_code == 400
    assert "kernel" in response.get_json()["message"].lower()
    assert kclient.get("/api/kernels").get_json() == []
    assert not any(name.startswith("kernel-") and name.endswith(".json") and "host" not in name
                   for name in os.listdir(runtime.runtime_dir()))


def test_an_id_in_use_by_another_server_is_409_and_its_file_is_left_alone(kclient):
    kernel_id = "11111111-2222-3333-4444-555555555555"
    theirs = runtime.runtime_dir() / f"kernel-{kernel_id}.json"
    mine = kclient.get("/api/kernels")  # the host is up: it would remove the files of dead hosts
    assert mine.get_json() == []
    content = json.dumps({"key": "another server", "nbflask_host": os.getpid()})  # a live host
    theirs.write_text(content)
    response = kclient.post("/api/kernels", json={"kernel_id": kernel_id})
    assert response.status_code == 409 and kernel_id in response.get_json()["message"]
    assert theirs.read_text() == content
    assert kclient.get("/api/kernels").get_json() == []


def test_a_broken_kernel_json_does_not_stop_kernel_starts(make_app, tmp_path, monkeypatch):
    broken = tmp_path / "jp" / "kernels" / "broken"
    broken.mkdir(parents=True)
    (broken / "kernel.json").write_text('["not", "an", "object"]')
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jp"))
    with kernel_client(make_app) as client:
        assert client.post("/api/kernels", json={"name": "python3"}).status_code == 201
        assert client.post("/api/kernels", json={"name": "broken"}).status_code == 404
