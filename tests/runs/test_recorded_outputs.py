"""Never lose output: a cell keeps running and recording after its only page went away, and its
outputs reach the stored notebook and any client that comes back, on every store and under
several gunicorn workers."""

from __future__ import annotations

import os
import signal
import time
import uuid

import nbformat
import psutil
import pytest
from kernelws import KernelSocket
from live import start_gunicorn, start_nbflask
from runevents import read_events, rebuilt
from waiting import wait_until

pytestmark = pytest.mark.slow

CODE = "import time\nfor i in range(30):\n    print(f'line {i}', flush=True)\n    time.sleep(0.5)"
LINES = "".join(f"line {i}\n" for i in range(30))
CELL = "cell-long-run"


@pytest.fixture(params=["file", "memory", "gunicorn", "swift"])
def server(request, tmp_path):
    config = {"kernels": {"recording_save_interval": 2}}
    if request.param == "memory":
        config["store"] = {"class": "memory"}
    if request.param == "swift":
        config["store"] = {"class": "swift", **request.getfixturevalue("swift_options")}
    if request.param == "gunicorn":
        live = start_gunicorn(tmp_path, config, workers=2)
    else:
        live = start_nbflask(tmp_path, config)
    yield live
    live.stop()


def notebook_with_the_cell(server) -> dict:
    http = server.session()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# above", id="md"),
                                         nbformat.v4.new_code_cell(CODE, id=CELL),
                                         nbformat.v4.new_code_cell("1 + 1", id="other")])
    reply = http.put(server.url + "api/contents/long.ipynb", json={"type": "notebook", "content": nb},
                     timeout=30)
    assert reply.status_code == 201, reply.text
    session = http.post(server.url + "api/sessions", timeout=90, json={
        "path": "long.ipynb", "type": "notebook", "name": "long.ipynb", "kernel": {"name": "python3"}}).json()
    return session


def stored_cell(server) -> dict:
    nb = server.session().get(server.url + "api/contents/long.ipynb", timeout=30).json()["content"]
    return next(cell for cell in nb["cells"] if cell["id"] == CELL)


def follow(server, kernel_id: str, run_id: str) -> list[dict]:
    """A client of ours coming back: the run as it stands, then its changes, as events; the
    run as the client holds it after each."""
    events, _ = read_events(server.session(), server.url + f"api/kernels/{kernel_id}/runs/{run_id}/events")
    return [rebuilt(events[:count]) for count, event in enumerate(events, 1) if event["event"] != "done"]


def start_the_cell_and_leave(server, kernel_id: str) -> str:
    """Run the cell as its page does, and close the page once the cell's first line is shown."""
    ws = KernelSocket(server.url, kernel_id, server.token, session_id=uuid.uuid4().hex)
    msg_id = ws.send("shell", "execute_request", {"code": CODE, "silent": False}, metadata={"cellId": CELL})
    ws.wait_for(lambda m: m["header"]["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id,
                timeout=60)
    ws.close()
    return msg_id


def cell_runs(server, kernel_id: str) -> list[dict]:
    return server.session().get(server.url + f"api/kernels/{kernel_id}/runs", params={"cell_id": CELL},
                                timeout=30).json()


def recorded_text(server, kernel_id: str) -> str:
    """What the kernel host recorded of the cell's run so far."""
    runs = cell_runs(server, kernel_id)
    return runs[0]["outputs"][0]["text"] if runs and runs[0]["outputs"] else ""


def test_a_cell_whose_page_closed_ends_up_whole_in_the_notebook_and_in_a_new_client(server):
    session = notebook_with_the_cell(server)
    kernel_id = session["kernel"]["id"]
    msg_id = start_the_cell_and_leave(server, kernel_id)
    wait_until(lambda: "line 2\n" in recorded_text(server, kernel_id), what="a line the page missed")
    runs = cell_runs(server, kernel_id)
    assert [run["id"] for run in runs] == [msg_id] and not runs[0]["done"]
    assert runs[0]["outputs"][0]["text"].startswith("line 0\nline 1\n")  # what it missed
    followed = follow(server, kernel_id, msg_id)
    texts = [run["outputs"][0]["text"] for run in followed]
    assert texts[-1] == LINES  # every line, once, in order
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:], strict=False))
    assert followed[-1]["execution_count"] == 1 and followed[-1]["status"] == "ok"
    deadline = time.monotonic() + 30
    while (cell := stored_cell(server))["outputs"] != [{"output_type": "stream", "name": "stdout",
                                                        "text": LINES}]:
        assert time.monotonic() < deadline, f"not saved in time: {cell['outputs']}"
        time.sleep(0.5)
    assert cell["execution_count"] == 1
    assert cell["source"] == CODE


def test_a_cell_never_reopened_is_saved_while_it_runs_and_at_its_end(server):
    session = notebook_with_the_cell(server)
    start_the_cell_and_leave(server, session["kernel"]["id"])
    seen_running = False
    deadline = time.monotonic() + 60
    while True:
        outputs = stored_cell(server)["outputs"]
        text = outputs[0]["text"] if outputs else ""
        if text == LINES:
            break
        seen_running = seen_running or bool(text)
        assert LINES.startswith(text), text
        assert time.monotonic() < deadline, f"not saved in time: {text!r}"
        time.sleep(0.5)
    assert seen_running  # saved during the run, not only at its end
    other = server.session().get(server.url + "api/contents/long.ipynb", timeout=30).json()["content"]
    assert [c["source"] for c in other["cells"]] == ["# above", CODE, "1 + 1"]  # the rest untouched


def test_killing_every_web_worker_mid_run_loses_no_line(tmp_path):
    """gunicorn replaces its workers; the kernel host (the master's) records on meanwhile, and
    the new workers write the whole run into the notebook."""
    with start_gunicorn(tmp_path, {"kernels": {"recording_save_interval": 2}}, workers=2) as server:
        session = notebook_with_the_cell(server)
        start_the_cell_and_leave(server, session["kernel"]["id"])
        workers = [child for child in psutil.Process(server.proc.pid).children()
                   if "nbflask.host.server" not in " ".join(child.cmdline())]
        assert len(workers) == 2
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            try:
                outputs = stored_cell(server)["outputs"]
            except Exception:  # noqa: BLE001 - the workers are coming back
                outputs = []
            if outputs and outputs[0]["text"] == LINES:
                break
            assert time.monotonic() < deadline, f"not saved in time: {outputs}"
            time.sleep(0.5)
        kernels = server.session().get(server.url + "api/kernels", timeout=30).json()
        assert [k["id"] for k in kernels] == [session["kernel"]["id"]]
