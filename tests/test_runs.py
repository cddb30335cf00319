"""Cell runs outlive their clients: the kernel host records every run's outputs, and runs can be
started, polled and followed as server-sent events without a websocket (scripts, proxies)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests
from kernelws import KernelSocket, replies_to
from live import start_nbflask

pytestmark = pytest.mark.slow

COUNT = "import time\nfor i in range(10):\n    print(f'line {i}', flush=True)\n    time.sleep(0.2)\n'end'"
LINES = "".join(f"line {i}\n" for i in range(10))


@pytest.fixture
def server(tmp_path):
    live = start_nbflask(tmp_path)
    yield live
    live.stop()


@pytest.fixture
def kernel(server):
    http = server.session()
    model = http.post(server.url + "api/kernels", json={}, timeout=90).json()
    yield model["id"]
    http.delete(server.url + f"api/kernels/{model['id']}", timeout=30)


def wait_done(http: requests.Session, url: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = http.get(url, timeout=30).json()
        if run["done"]:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run at {url} not done: {run}")


def test_a_run_started_over_rest_is_polled_to_its_outputs(server, kernel):
    http = server.session()
    reply = http.post(server.url + f"api/kernels/{kernel}/execute",
                      json={"code": COUNT, "cell_id": "c1", "path": "a.ipynb"}, timeout=90)
    assert reply.status_code == 202, reply.text
    location = reply.headers["Location"]
    assert location.endswith(f"/api/kernels/{kernel}/runs/{reply.json()['id']}")
    run = wait_done(http, requests.compat.urljoin(server.url, location))
    assert run["status"] == "ok" and run["cell_id"] == "c1" and run["path"] == "a.ipynb"
    assert isinstance(run["execution_count"], int)
    stream, result = run["outputs"]
    assert stream == {"output_type": "stream", "name": "stdout", "text": LINES}
    assert result["output_type"] == "execute_result" and result["data"] == {"text/plain": "'end'"}
    listed = http.get(server.url + f"api/kernels/{kernel}/runs", params={"cell_id": "c1"}, timeout=30).json()
    assert [r["id"] for r in listed] == [run["id"]]


def test_a_run_is_followed_as_server_sent_events(server, kernel):
    http = server.session()
    run = http.post(server.url + f"api/kernels/{kernel}/execute", json={"code": COUNT}, timeout=90).json()
    events = []
    with http.get(server.url + f"api/kernels/{kernel}/runs/{run['id']}/events", stream=True,
                  timeout=60) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        event: dict = {}
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith(("event:", "id:", "data:")):
                key, _, value = line.partition(":")
                event[key] = value.strip()
            elif not line and event:
                events.append(event)
                event = {}
                if events[-1]["event"] == "done":
                    break
    runs = [json.loads(e["data"]) for e in events if e["event"] == "run"]
    assert events[-1]["event"] == "done" and json.loads(events[-1]["data"]) == {"status": "ok"}
    versions = [int(e["id"]) for e in events if e["event"] == "run"]
    assert versions == sorted(set(versions)) and len(runs) >= 2  # it streamed, in order
    texts = [r["outputs"][0]["text"] for r in runs if r["outputs"]]
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:], strict=False))
    assert runs[-1]["outputs"][0]["text"] == LINES
    resumed = http.get(server.url + f"api/kernels/{kernel}/runs/{run['id']}/events",
                       headers={"Last-Event-ID": str(versions[-1])}, timeout=30).text
    assert "event: run" not in resumed and "event: done" in resumed  # nothing new since


def test_errors_and_bad_requests(server, kernel):
    http = server.session()
    failing = http.post(server.url + f"api/kernels/{kernel}/execute", json={"code": "1/0"}, timeout=90)
    run = wait_done(http, requests.compat.urljoin(server.url, failing.headers["Location"]))
    assert run["status"] == "error" and run["outputs"][0]["ename"] == "ZeroDivisionError"
    for body in ({}, {"code": 3}, {"code": "1", "cell_id": 4}):
        reply = http.post(server.url + f"api/kernels/{kernel}/execute", json=body, timeout=30)
        assert reply.status_code == 400, body
        assert "must be a string" in reply.json()["message"]
    assert http.post(server.url + f"api/kernels/{kernel}/execute", data="{", timeout=30,
                     headers={"Content-Type": "application/json"}).status_code == 400
    missing = http.get(server.url + f"api/kernels/{kernel}/runs/nope", timeout=30)
    assert missing.status_code == 404 and "No run nope" in missing.json()["message"]
    assert http.get(server.url + f"api/kernels/{uuid.uuid4()}/runs", timeout=30).status_code == 404
    assert http.post(server.url + f"api/kernels/{uuid.uuid4()}/execute", json={"code": "1"},
                     timeout=30).status_code == 404
    bad_id = http.get(server.url + f"api/kernels/{kernel}/runs/{run['id']}/events",
                      headers={"Last-Event-ID": "x"}, timeout=30)
    assert bad_id.status_code == 400


def test_runs_need_auth(server, kernel):
    anonymous = requests.post(server.url + f"api/kernels/{kernel}/execute", json={"code": "1"}, timeout=30)
    assert anonymous.status_code in (401, 403)
    assert requests.get(server.url + f"api/kernels/{kernel}/runs", timeout=30).status_code in (401, 403)


def test_a_cell_run_from_a_websocket_is_recorded_after_its_client_left(server, kernel):
    """The client sends a cell as JupyterLab does (cellId in the metadata) and goes away after
    the first line: the host keeps recording, so the whole output is there for the next page."""
    ws = KernelSocket(server.url, kernel, server.token, session_id=uuid.uuid4().hex)
    ws.send("shell", "execute_request", {"code": COUNT, "silent": False},
            metadata={"cellId": "cell-42"})
    ws.wait_for(lambda m: m["header"]["msg_type"] == "stream")
    ws.close()
    http = server.session()
    deadline = time.monotonic() + 60
    while True:
        runs = http.get(server.url + f"api/kernels/{kernel}/runs", params={"cell_id": "cell-42"},
                        timeout=30).json()
        if runs and runs[0]["done"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(runs) == 1 and runs[0]["status"] == "ok"
    assert runs[0]["outputs"][0]["text"] == LINES
    with KernelSocket(server.url, kernel, server.token) as again:  # the kernel is still fine
        marker = again.send("shell", "execute_request", {"code": "pass", "silent": False})
        again.wait_for(replies_to(marker))
