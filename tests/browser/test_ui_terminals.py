"""Terminals in JupyterLab and Notebook 7, served by a real `nbflask run`, in headless Chromium:
the launcher (Lab) and New > Terminal (Notebook 7) open a real login shell on the kernel
host's pty; what it prints shows in the page, and again after a reload (the scrollback).

xterm.js draws on a canvas; with JupyterLab's own `screenReaderMode` setting it also keeps
the rows as text, which is what the tests read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Locator, Page, expect
from ui_tools import KnownError, Lab, Tree, Watch, log_in, needs_chromium, new_page

pytestmark = [pytest.mark.slow, pytest.mark.browser, needs_chromium]

TERMINAL_SETTINGS = "@jupyterlab/terminal-extension:plugin"
COMMAND = "echo nbflask-$((6*7))"
LAUNCHER_TERMINAL = ".jp-LauncherCard[data-category='Other'][title='Start a new terminal session']:visible"
KNOWN_ERRORS = [
    KnownError(
        r"^Cannot read properties of undefined \(reading 'schema'\)$",
        "Notebook 7.6's shortcuts plugin, on every page load, under Jupyter Server 2.21 too",
    ),
    KnownError(
        r"^TypeError: Cannot read properties of undefined \(reading 'options'\)\s+at \w+\.setOption",
        "the terminal extension applies the terminal settings to a terminal widget whose xterm.js"
        " has not loaded yet (seen now and then on Notebook 7.6's terminal page); a front-end race,"
        " not checked under Jupyter Server (its scratch venv has no Notebook 7)",
    ),
]


@pytest.fixture(scope="module", autouse=True)
def readable_terminals(server) -> None:
    """Turn on xterm.js's text rows for every page of this server (a user setting)."""
    raw = json.dumps({"screenReaderMode": True})
    response = server.session().put(server.url + f"lab/api/settings/{TERMINAL_SETTINGS}",
                                    json={"raw": raw}, timeout=30)
    assert response.status_code == 204, response.text


def rows(page: Page) -> Locator:
    """The text of the terminal's rows, as xterm.js keeps it for screen readers."""
    return page.locator(".jp-Terminal:visible .xterm-accessibility-tree")


def type_command(page: Page) -> None:
    page.locator(".jp-Terminal:visible .xterm-screen").click()
    page.keyboard.type(COMMAND)
    page.keyboard.press("Enter")


@contextmanager
def watched(browser, server, path: str) -> Iterator[tuple[Page, Watch]]:
    """A logged-in page on `path`, clean when done; the terminals it made are deleted after."""
    page, watch = new_page(browser, [], KNOWN_ERRORS)
    log_in(page, server, path)
    try:
        yield page, watch
        watch.assert_clean()
    finally:
        page.context.close()
        api = server.session()
        for terminal in api.get(server.url + "api/terminals", timeout=30).json():
            api.delete(server.url + f"api/terminals/{terminal['name']}", timeout=30)


@pytest.fixture
def lab(browser, server) -> Iterator[Lab]:
    with watched(browser, server, "lab") as (page, watch):
        lab = Lab(page, watch)
        lab.wait_ready()
        yield lab


def test_lab_launcher_opens_a_terminal_whose_output_survives_a_reload(lab, server):
    lab.browser_command("launcher:create")
    lab.page.locator(LAUNCHER_TERMINAL).click()
    expect(rows(lab.page)).to_contain_text(re.compile(r"\$|#"))  # the shell's prompt
    type_command(lab.page)
    expect(rows(lab.page)).to_contain_text("nbflask-42")
    (terminal,) = server.session().get(server.url + "api/terminals", timeout=30).json()

    lab.page.reload()
    lab.wait_ready()
    expect(rows(lab.page)).to_contain_text("nbflask-42")  # the scrollback, from the kernel host
    listed = server.session().get(server.url + "api/terminals", timeout=30).json()
    assert [t["name"] for t in listed] == [terminal["name"]]  # the same shell, reconnected


@pytest.fixture
def tree(browser, server) -> Iterator[Tree]:
    with watched(browser, server, "tree") as (page, watch):
        yield Tree(page, watch)


def test_notebook_new_terminal_opens_a_terminal_whose_output_survives_a_reload(tree, server):
    tree.page.locator(".lm-MenuBar-item", has_text=re.compile("^New$")).click()
    with tree.page.context.expect_page() as opened:
        tree.page.locator(".lm-Menu [data-command='terminal:create-new']").click()
    page = opened.value
    (terminal,) = server.session().get(server.url + "api/terminals", timeout=30).json()
    page.wait_for_url(re.compile(rf".*/terminals/{terminal['name']}$"))
    expect(rows(page)).to_contain_text(re.compile(r"\$|#"))
    type_command(page)
    expect(rows(page)).to_contain_text("nbflask-42")

    page.reload()
    expect(rows(page)).to_contain_text("nbflask-42")
