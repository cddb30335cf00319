"""Never lose output: a cell keeps running and recording after its only page went away, and its
outputs reach the stored notebook and any client that comes back, on every store and under
several gunicorn workers."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest
import requests
from kernelws import KernelSocket
from live import start_gunicorn, start_nbflask
from runevents import read_events, rebuilt
from waiting import wait_until

pytestmark = pytest.mark.slow

HOLD = 4  # the cell prints lines 0 to HOLD, then waits for the test's go before the rest
LINES = "".join(f"line {i}\n" for i in range(30))
HELD = "".join(f"line {i}\n" for i in range(HOLD + 1))
CELL = "cell-long-run"
STDOUT = {"output_type": "stream", "name": "stdout"}


def cell_code(go: Path) -> str:
    """The cell: 30 lines, and after line HOLD a wait for the file `go`, so the test checks
    the run while it surely runs (however slow the machine), then lets it end at once."""
    return (f"import os, time\nfor i in range(30):\n    print(f'line {{i}}', flush=True)\n"
            f"    while i == {HOLD} and not os.path.exists({str(go)!r}):\n        time.sleep(0.01)")


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


def notebook_with_the_cell(server, code: str) -> dict:
    http = server.session()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# above", id="md"),
                                         nbformat.v4.new_code_cell(code, id=CELL),
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


def stored_text(server) -> str:
    """What the stored notebook has of the cell's output: at every save a beginning of it."""
    outputs = stored_cell(server)["outputs"]
    text = outputs[0]["text"] if outputs else ""
    assert outputs in ([], [{**STDOUT, "text": text}]) and LINES.startswith(text), outputs
    return text


def follow(server, kernel_id: str, run_id: str, go: Path) -> list[dict]:
    """A client of ours coming back: the run as it stands, then its changes, as events; the
    run as the client holds it after each. The cell goes on once the first event is in."""
    events, _ = read_events(server.session(), server.url + f"api/kernels/{kernel_id}/runs/{run_id}/events",
                            on_event=lambda event: go.touch())
    return [rebuilt(events[:count]) for count, event in enumerate(events, 1) if event["event"] != "done"]


def start_the_cell_and_leave(server, kernel_id: str, code: str) -> str:
    """Run the cell as its page does, and close the page once the cell's first line is shown."""
    ws = KernelSocket(server.url, kernel_id, server.token, session_id=uuid.uuid4().hex)
    msg_id = ws.send("shell", "execute_request", {"code": code, "silent": False}, metadata={"cellId": CELL})
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


def test_a_cell_whose_page_closed_ends_up_whole_in_the_notebook_and_in_a_new_client(server, tmp_path):
    go = tmp_path / "go"
    code = cell_code(go)
    session = notebook_with_the_cell(server, code)
    kernel_id = session["kernel"]["id"]
    msg_id = start_the_cell_and_leave(server, kernel_id, code)
    wait_until(lambda: recorded_text(server, kernel_id) == HELD, what="the lines the page missed")
    runs = cell_runs(server, kernel_id)
    assert [run["id"] for run in runs] == [msg_id] and not runs[0]["done"]
    followed = follow(server, kernel_id, msg_id, go)
    texts = [run["outputs"][0]["text"] for run in followed]
    assert texts[0] == HELD  # the run as it stood, what the page missed included
    assert texts[-1] == LINES  # every line, once, in order
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:], strict=False))
    assert followed[-1]["execution_count"] == 1 and followed[-1]["status"] == "ok"
    wait_until(lambda: stored_text(server) == LINES, every=0.2, what="the whole run saved")
    cell = stored_cell(server)
    assert cell["execution_count"] == 1
    assert cell["source"] == code


def test_a_cell_never_reopened_is_saved_while_it_runs_and_at_its_end(server, tmp_path):
    go = tmp_path / "go"
    code = cell_code(go)
    session = notebook_with_the_cell(server, code)
    start_the_cell_and_leave(server, session["kernel"]["id"], code)
    saved = wait_until(lambda: stored_text(server), timeout=60, every=0.2, what="a save while it runs")
    assert HELD.startswith(saved)  # saved during the run, not only at its end
    go.touch()
    wait_until(lambda: stored_text(server) == LINES, timeout=60, every=0.2, what="the whole run saved")
    other = server.session().get(server.url + "api/contents/long.ipynb", timeout=30).json()["content"]
    assert [c["source"] for c in other["cells"]] == ["# above", code, "1 + 1"]  # the rest untouched


def test_killing_every_web_worker_mid_run_loses_no_line(tmp_path):
    """gunicorn replaces its workers; the kernel host (the master's) records on meanwhile, and
    the new workers write the whole run into the notebook."""
    go = tmp_path / "go"
    code = cell_code(go)
    with start_gunicorn(tmp_path, {"kernels": {"recording_save_interval": 2}}, workers=2) as server:
        session = notebook_with_the_cell(server, code)
        start_the_cell_and_leave(server, session["kernel"]["id"], code)
        workers = [child for child in psutil.Process(server.proc.pid).children()
                   if "nbflask.host.server" not in " ".join(child.cmdline())]
        assert len(workers) == 2
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)
        _, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive
        go.touch()  # the rest of the run comes while gunicorn replaces its workers

        def saved() -> bool:
            try:
                return stored_text(server) == LINES
            except (requests.RequestException, ValueError, KeyError):  # the workers are coming back
                return False

        wait_until(saved, timeout=60, every=0.2, what="the whole run saved by the new workers")
        kernels = server.session().get(server.url + "api/kernels", timeout=30).json()
        assert [k["id"] for k in kernels] == [session["kernel"]["id"]]
