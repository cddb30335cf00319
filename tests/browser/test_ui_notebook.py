"""Notebook 7, served by a real `nbflask run` with real kernels, driven in headless Chromium.

The dashboard at `/tree` lists files, New > Python 3 opens a notebook in a new tab whose cell
runs on a real kernel, and the Running tab shows that kernel and shuts it down; in both
deployments (a token link at the root; the password form under `/ipython/`). Any error
response, failed request, console error, unexpected dialog or uncaught page error fails the
test (`Watch`), except two errors Notebook 7.6 throws by itself (`KNOWN_ERRORS`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect
from ui_tools import (
    KnownError,
    Tree,
    log_in,
    needs_chromium,
    new_page,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser, needs_chromium]

KNOWN_ERRORS = [
    KnownError(
        r"^Cannot read properties of undefined \(reading 'schema'\)$",
        "Notebook 7.6's shortcuts plugin, on every page load, under Jupyter Server 2.21 too",
    ),
    KnownError(
        r"^Disposed$", "the dashboard after New opens a notebook in a new tab, under Jupyter Server 2.21 too"
    ),
    KnownError(
        r"^Comm not found for comm id ",
        "ipywidgets' manager on a second connection to the kernel (iopub reaches every connection),"
        " under Jupyter Server 2.21 too",
    ),
]


@pytest.fixture
def tree(browser, server) -> Iterator[Tree]:
    page, watch = new_page(browser, [], KNOWN_ERRORS)
    log_in(page, server, "tree")
    tree = Tree(page, watch)
    yield tree
    watch.assert_clean()
    page.context.close()


def test_tree_lists_new_runs_and_running_shuts_the_kernel_down(tree, server):
    client = server.session()
    for path, model in (
        ("project", {"type": "directory"}),
        ("data.csv", {"type": "file", "format": "text", "content": "a,b\n1,2\n"}),
    ):
        assert client.put(server.url + "api/contents/" + path, json=model, timeout=30).status_code == 201
    tree.page.reload()
    expect(tree.names).to_have_text(["project", "data.csv"])

    notebook = tree.new_notebook()
    cell = notebook.run("print(6 * 7)")
    expect(notebook.output(cell, "application/vnd.jupyter.stdout")).to_have_text("42\n")
    name = notebook.page.url.rsplit("/", 1)[1]
    folder = os.environ.get("UI_SCREENSHOTS")
    if folder and not server.uses_password:
        notebook.page.screenshot(path=Path(folder) / "notebook7.png")

    tree.page.bring_to_front()
    tree.tab("Running")
    (kernel,) = client.get(server.url + "api/kernels", timeout=30).json()
    entry = tree.running_kernel(kernel["id"])
    expect(entry).to_contain_text(name)
    tree.shut_down(entry)
    expect(entry).to_have_count(0)
    assert client.get(server.url + "api/kernels", timeout=30).json() == []
    assert client.get(server.url + f"api/kernels/{kernel['id']}", timeout=30).status_code == 404
