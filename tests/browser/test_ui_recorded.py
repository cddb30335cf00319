"""A cell keeps running after its page closed, and a page opened later shows it: what it printed
meanwhile, then its live output to the end, and its execution count. In JupyterLab and in
Notebook 7, both served by a real `nbflask run` with real kernels, in headless Chromium; the
pages need nbflask's front-end extension (frontend/recorded-outputs) for this, and ask the user
nothing."""

from __future__ import annotations

import time

import nbformat
import pytest
from playwright.sync_api import expect
from test_ui_lab import KNOWN_ERRORS as LAB_ERRORS
from test_ui_notebook import KNOWN_ERRORS as NOTEBOOK_ERRORS
from ui_tools import Lab, Notebook, log_in, needs_chromium, new_page
from waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser, needs_chromium]

# After line 0 the cell waits for the test to say the first page has gone, after line 19 for it
# to say go: lines 1-19 are printed while no page is open, and the cell surely still runs when
# the second page opens, however slow the machine. The last lines come live, a few at a time.
CODE = ("import os, time\nfor i in range(30):\n    print(f'line {i}', flush=True)\n"
        "    while (i == 0 and not os.path.exists({left!r})) or (i == 19 and not os.path.exists({go!r})):\n"
        "        time.sleep(0.01)\n    time.sleep(0.05 if i > 19 else 0)")
LINES = "".join(f"line {i}\n" for i in range(30))
STDOUT = "application/vnd.jupyter.stdout"
PAGES = {"lab": ("lab/tree/", LAB_ERRORS), "notebook7": ("notebooks/", NOTEBOOK_ERRORS)}


@pytest.fixture(params=list(PAGES))
def front_end(request):
    return request.param


def open_notebook(browser, server, front_end: str, path: str, connected: bool = True):
    """The notebook in a new page; `connected`: until the page's kernel has answered it (a kernel
    busy running a cell answers only once the cell ends)."""
    prefix, known = PAGES[front_end]
    page, watch = new_page(browser, [], known)
    log_in(page, server, prefix + path)
    notebook = (Lab if front_end == "lab" else Notebook)(page, watch)
    notebook.cells.first.wait_for()
    deadline = time.monotonic() + 60
    while not (sessions := [s for s in server.session().get(server.url + "api/sessions", timeout=30).json()
                            if s["path"] == path]):
        assert time.monotonic() < deadline, f"no session for {path}"
        time.sleep(0.2)
    if connected:
        watch.wait_kernel(page, sessions[0]["kernel"]["id"])
    return notebook


def test_a_page_opened_later_shows_a_running_cell_and_follows_it_live(browser, server, front_end, tmp_path):
    http = server.session()
    left, go = tmp_path / "left", tmp_path / "go"
    code = CODE.replace("{left!r}", repr(str(left))).replace("{go!r}", repr(str(go)))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code, id="long-run")], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}})
    path = f"long-{front_end}.ipynb"
    assert http.put(server.url + f"api/contents/{path}", json={"type": "notebook", "content": nb},
                    timeout=30).status_code == 201

    first = open_notebook(browser, server, front_end, path)
    cell = first.cells.first
    cell.locator(".cm-content").click()
    first.page.keyboard.press("Control+Enter")
    expect(first.output(cell, STDOUT)).to_contain_text("line 0", timeout=30_000)
    first.watch.assert_clean()
    first.page.context.close()
    left.touch()

    # Come back once the cell has printed lines 1-19 with no page open.
    kernel_id = next(s for s in http.get(server.url + "api/sessions", timeout=30).json()
                     if s["path"] == path)["kernel"]["id"]
    runs = server.url + f"api/kernels/{kernel_id}/runs"
    wait_until(lambda: any("line 19\n" in output.get("text", "") for run in http.get(runs, timeout=30).json()
                           for output in run["outputs"]), what="lines printed while no page was open")
    again = open_notebook(browser, server, front_end, path, connected=False)
    cell = again.cells.first
    output = again.output(cell, STDOUT)
    expect(output).to_contain_text("line 19", timeout=30_000)  # what it printed while no page was open
    expect(cell.locator(".jp-InputPrompt")).to_have_text("[*]:")  # still running
    assert "line 20" not in output.inner_text()
    go.touch()  # the rest comes live
    expect(output).to_have_text(LINES, timeout=60_000)
    expect(cell.locator(".jp-InputPrompt")).to_have_text("[1]:", timeout=30_000)
    again.watch.assert_clean()
    again.page.context.close()
