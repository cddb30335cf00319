"""Cell runs outlive their clients: the kernel host records every run's outputs, and runs can be
started, polled and followed as server-sent events without a websocket (scripts, proxies)."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pytest
import requests
from kernelws import KernelSocket, replies_to
from live import start_nbflask
from runevents import read_events, rebuilt

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
    url = server.url + f"api/kernels/{kernel}/runs/{run['id']}/events"
    events, _ = read_events(http, url)
    assert events[-1]["event"] == "done"
    assert json.loads(events[-1]["data"]) == {"status": "ok", "reason": None}
    assert events[0]["event"] == "run" and {e["event"] for e in events[1:-1]} == {"change"}
    versions = [int(e["id"]) for e in events[:-1]]
    assert versions == sorted(set(versions)) and len(versions) >= 2  # it streamed, in order
    assert rebuilt(events)["outputs"][0]["text"] == LINES
    resumed = http.get(url, headers={"Last-Event-ID": str(versions[-1])}, timeout=30).text
    assert "event: run" not in resumed and "event: done" in resumed  # nothing new since


PACED = ("import time\nfrom IPython.display import display\n"
         "for i in range({count}):\n"
         "    print(f'{{i:04}} ' + 'p' * 495, flush=True)\n"
         "    display({{'text/plain': f'{{i:04}} ' + 'd' * 495}}, raw=True)\n"
         "    time.sleep(0.003)\n")


def test_events_carry_what_changed_so_their_bytes_grow_with_the_output(server, kernel):
    """N outputs cost O(N) bytes of events: each event carries what is new, not the run so
    far (300 KB of outputs were sent as tens of MB when every event was the whole run). The
    changes, applied in order, give the run GET returns; a client that resumes in the middle
    gets the whole run first, so it rebuilds the same."""
    http = server.session()
    count = 300
    run = http.post(server.url + f"api/kernels/{kernel}/execute",
                    json={"code": PACED.format(count=count)}, timeout=90).json()
    url = server.url + f"api/kernels/{kernel}/runs/{run['id']}/events"
    events, size = read_events(http, url)
    final = http.get(server.url + f"api/kernels/{kernel}/runs/{run['id']}", timeout=30).json()
    assert final["status"] == "ok" and len(final["outputs"]) == 2 * count
    output_bytes = len(json.dumps(final["outputs"]))
    assert len(events) > 10  # it came in many steps
    assert size < 2 * output_bytes, (size, output_bytes, len(events))
    assert rebuilt(events)["outputs"] == final["outputs"]
    middle = next(e["id"] for e in events[len(events) // 2:] if e["event"] == "change")
    resumed, _ = read_events(http, url, headers={"Last-Event-ID": middle})
    assert resumed[0]["event"] == "run" and rebuilt(resumed)["outputs"] == final["outputs"]


def ended_run(server, kernel: str, end) -> tuple[dict, list[dict]]:
    """A REST run that prints its kernel's pid and sleeps; `end(pid)` is called once the pid
    has come, and the run's events are read to their end (the stream must close)."""
    http = server.session()
    code = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(600)"
    run = http.post(server.url + f"api/kernels/{kernel}/execute", json={"code": code}, timeout=90).json()
    seen: dict = {}

    def on_event(event: dict) -> None:
        seen["run"] = rebuilt([*seen.get("events", []), event])
        seen.setdefault("events", []).append(event)
        outputs = seen["run"].get("outputs") or []
        if outputs and "pid" not in seen:
            seen["pid"] = int(outputs[0]["text"])
            end(seen["pid"])

    events, _ = read_events(http, server.url + f"api/kernels/{kernel}/runs/{run['id']}/events",
                            on_event=on_event)
    return http.get(server.url + f"api/kernels/{kernel}/runs/{run['id']}", timeout=30).json(), events


def test_a_run_whose_kernel_dies_ends_with_the_reason_and_its_stream_closes(server, kernel):
    run, events = ended_run(server, kernel, lambda pid: os.kill(pid, signal.SIGKILL))
    done = json.loads(events[-1]["data"])
    assert events[-1]["event"] == "done" and done["status"] == "error"
    assert done["reason"].startswith("the kernel died: ") and "SIGKILL" in done["reason"]
    assert (run["status"], run["reason"], run["done"]) == ("error", done["reason"], True)


def test_a_run_whose_kernel_is_restarted_ends_aborted_and_its_stream_closes(server, kernel):
    http = server.session()
    restart = server.url + f"api/kernels/{kernel}/restart"
    run, events = ended_run(server, kernel, lambda pid: http.post(restart, timeout=90).raise_for_status())
    assert events[-1]["event"] == "done"
    assert json.loads(events[-1]["data"]) == {"status": "aborted", "reason": "the kernel was restarted"}
    assert (run["status"], run["reason"], run["done"]) == ("aborted", "the kernel was restarted", True)


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


def test_thousands_of_runs_without_output_stay_within_the_recording_bound(tmp_path):
    """The recording's bound counts what a run costs the host, not only its outputs: with 32 KiB,
    2000 cells that print nothing (a notebook's cells, run over a websocket) leave the newest
    few dozen runs, not all 2000 (a run takes over 600 bytes of the host, ids apart)."""
    bound, total = 32 * 1024, 2000
    server = start_nbflask(tmp_path, {"kernels": {"recording_bytes": bound}})
    try:
        http = server.session()
        kernel_id = http.post(server.url + "api/kernels", json={}, timeout=90).json()["id"]
        with KernelSocket(server.url, kernel_id, server.token) as ws:
            for n in range(total - 1):
                ws.send("shell", "execute_request", {"code": "", "silent": False},
                        metadata={"cellId": f"cell-{n}"})
            last = ws.send("shell", "execute_request", {"code": "", "silent": False},
                           metadata={"cellId": "cell-last"})
            ws.wait_for(replies_to(last), timeout=120)
        runs = http.get(server.url + f"api/kernels/{kernel_id}/runs", timeout=30).json()
        assert 0 < len(runs) <= bound // 600, len(runs)
        assert runs[-1]["id"] == last and runs[-1]["dropped"] == total - len(runs), runs[-1]
    finally:
        server.stop()
