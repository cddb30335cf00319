"""JupyterLab, served by a real `nbflask run` with real kernels, driven in headless Chromium.

Each test is a user's story, from the launcher to the kernel and back, in both deployments
(a token link at the root; the password form under `/ipython/`). Any error response, failed
request, uncaught page error, console error or unexpected dialog fails the test (`Watch`).
Set UI_SCREENSHOTS to a folder to keep the screenshots (docs/screenshots/ holds ours).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from live import own_folders, start_nbflask
from playwright.sync_api import expect
from ui_tools import (
    Allowed,
    KnownError,
    Lab,
    accept_dialog,
    log_in,
    needs_chromium,
    new_page,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser, needs_chromium]

STDOUT = "application/vnd.jupyter.stdout"
STDERR = "application/vnd.jupyter.stderr"
# The 4xx answers JupyterLab provokes on purpose, which Jupyter Server gives too.
ALLOWED = [
    Allowed(
        "GET",
        r".*/api/contents/(Untitled\d*|kept)\.ipynb",
        404,
        "the first-save rename asks whether the new name is free, and the page then still polls"
        " the old name a few times (content=0); Jupyter Server 2.21 answers 404 to the same",
    ),
]


# What JupyterLab 4.6 gives by itself, under Jupyter Server 2.21 too.
KNOWN_ERRORS = [
    KnownError(
        r"Cannot read properties of null \(reading 'observe'\)",
        "a closed notebook's content-visibility observer, on a reload or a new notebook",
    ),
]


@pytest.fixture
def lab(browser, server) -> Iterator[Lab]:
    page, watch = new_page(browser, ALLOWED, KNOWN_ERRORS)
    log_in(page, server, "lab")
    lab = Lab(page, watch)
    lab.wait_ready()
    yield lab
    watch.assert_clean()
    page.context.close()


def screenshot(lab: Lab, server, name: str) -> None:
    """Keep a picture for the docs when asked to (UI_SCREENSHOTS), from one deployment."""
    folder = os.environ.get("UI_SCREENSHOTS")
    if folder and not server.uses_password:
        lab.page.screenshot(path=Path(folder) / name)


def test_launcher_notebook_shows_text_html_png_markdown_math_and_a_traceback(lab, server):
    lab.new_notebook()
    cell = lab.run("print('hello from the kernel')")
    expect(lab.output(cell, STDOUT)).to_have_text("hello from the kernel\n")

    cell = lab.run("from IPython.display import HTML\nHTML('<b class=\"probe\">bold from HTML</b>')")
    expect(lab.output(cell, "text/html").locator("b.probe")).to_have_text("bold from HTML")

    cell = lab.run("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()")
    image = lab.output(cell, "image/png").locator("img")
    expect(image).to_have_attribute("src", re.compile("^data:image/png;base64,"))
    assert image.evaluate("img => img.complete && img.naturalWidth") > 100

    cell = lab.run("# Euler\n\nThe identity $e^{i\\pi} + 1 = 0$ holds.", cell_type="markdown")
    rendered = cell.locator(".jp-MarkdownOutput")
    expect(rendered.locator("h1")).to_contain_text("Euler")
    expect(rendered.locator("mjx-container")).to_have_count(1)

    cell = lab.run("1 / 0")
    expect(lab.output(cell, STDERR)).to_contain_text("ZeroDivisionError")
    screenshot(lab, server, "jupyterlab.png")


def test_input_is_answered_sleep_is_interrupted_and_restart_clears_the_kernel(lab):
    lab.new_notebook()
    cell = lab.run("name = input('Your name? ')\nprint('hello', name)", wait=False)
    answer = cell.locator(".jp-Stdin-input")
    answer.fill("Ada")
    answer.press("Enter")
    lab.wait_done(cell)
    expect(lab.output(cell, STDOUT).last).to_contain_text("hello Ada")

    cell = lab.run("import time\ntime.sleep(60)", wait=False)
    lab.notebook.locator(".jp-Notebook-ExecutionIndicator[data-status='busy']").wait_for()
    lab.toolbar("notebook:interrupt-kernel")
    lab.wait_done(cell)
    expect(lab.output(cell, STDERR)).to_contain_text("KeyboardInterrupt")

    lab.run("marker = 42")
    lab.restart_kernel()
    cell = lab.run("print('marker' in globals())")
    expect(lab.output(cell, STDOUT)).to_have_text("False\n")


def test_first_save_renames_and_the_outputs_survive_a_reload(lab, server):
    lab.new_notebook()
    lab.run("print('still here after reload')")
    lab.page.keyboard.press("Control+s")
    accept_dialog(lab.page, lab.watch, "Rename file", fill="kept.ipynb")
    expect(lab.listed("kept.ipynb")).to_have_count(1)
    saved = server.session().get(server.url + "api/contents/kept.ipynb", timeout=30).json()
    assert saved["content"]["cells"][0]["outputs"][0]["text"] == "still here after reload\n"

    lab.page.reload()
    lab.wait_ready()
    # Opened from the file browser: JupyterLab does not save its layout on a rename (the
    # workspace it PUTs still names the old path as current), so a reload may bring the
    # renamed tab back behind the module's earlier notebooks, or not at all.
    lab.listed("kept.ipynb").dblclick()
    expect(lab.page.locator(".jp-mod-current .lm-TabBar-tabLabel")).to_contain_text("kept.ipynb")
    cell = lab.cells.first
    expect(lab.output(cell, STDOUT)).to_have_text("still here after reload\n")


def test_file_browser_makes_renames_uploads_and_deletes(lab, server, tmp_path):
    contents = server.session()
    lab.browser_command("filebrowser:create-new-directory")
    lab.rename_in_place("made")
    expect(lab.listed("made")).to_have_count(1)
    assert contents.get(server.url + "api/contents/made", timeout=30).json()["type"] == "directory"

    lab.context_command("made", "filebrowser:rename")
    lab.rename_in_place("renamed")
    expect(lab.listed("renamed")).to_have_count(1)
    expect(lab.listed("made")).to_have_count(0)

    upload = tmp_path / "uploaded.txt"
    upload.write_text("sent by the browser\n")
    lab.upload(upload)
    expect(lab.listed("uploaded.txt")).to_have_count(1)
    lab.close_tab("uploaded.txt")  # JupyterLab 4.6 opens what it uploaded
    model = contents.get(server.url + "api/contents/uploaded.txt", timeout=30).json()
    assert model["content"] == "sent by the browser\n"

    lab.context_command("uploaded.txt", "filebrowser:delete")
    accept_dialog(lab.page, lab.watch, re.compile("^(Delete|Move to Trash)$"))
    expect(lab.listed("uploaded.txt")).to_have_count(0)
    assert contents.get(server.url + "api/contents/uploaded.txt", timeout=30).status_code == 404


def test_a_widget_slider_talks_to_the_kernel_both_ways(lab):
    lab.new_notebook()
    cell = lab.run(
        "import ipywidgets as widgets\n"
        "slider = widgets.IntSlider(value=3, min=0, max=10, description='probe')\n"
        "seen = []\n"
        "slider.observe(lambda change: seen.append(change['new']), 'value')\n"
        "slider"
    )
    readout = cell.locator(".widget-readout")
    expect(readout).to_have_text("3")
    cell.locator(".noUi-handle").focus()
    # One step: ipywidgets sends a model's next change only once the kernel has answered the
    # one before (msg_throttle 1), so after two steps the print below could overtake the
    # second; a single change goes out at once, ahead of the print, on the same channel.
    lab.page.keyboard.press("ArrowRight")
    expect(readout).to_have_text("4")
    echo = lab.run("print(slider.value, seen)")
    expect(lab.output(echo, STDOUT)).to_have_text("4 [4]\n")

    lab.run("slider.value = 9")
    expect(readout).to_have_text("9")


def test_the_dark_theme_survives_a_reload(lab):
    body = lab.page.locator("body")
    expect(body).to_have_attribute("data-jp-theme-name", "JupyterLab Light")
    lab.menu("Settings", "Theme", "JupyterLab Dark")
    expect(body).to_have_attribute("data-jp-theme-name", "JupyterLab Dark")
    lab.page.wait_for_load_state("networkidle")
    lab.page.reload()
    lab.wait_ready()
    expect(body).to_have_attribute("data-jp-theme-name", "JupyterLab Dark")
    lab.menu("Settings", "Theme", "JupyterLab Light")  # the module's other tests expect light
    expect(body).to_have_attribute("data-jp-theme-name", "JupyterLab Light")


def test_help_licenses_downloads_its_reports_through_the_app_a_ui_test_tool_reaches(browser, tmp_path):
    """With ui.expose_app_in_browser the page's app is window.jupyterapp, which UI test tools
    drive; through it, Help > Licenses opens and its three downloads start (they never did)."""
    exposed = {"ui": {"expose_app_in_browser": True}}
    with start_nbflask(tmp_path, exposed, env=own_folders(tmp_path)) as server:
        server.uses_password = False
        page, watch = new_page(browser, ALLOWED, KNOWN_ERRORS)
        log_in(page, server, "lab")
        Lab(page, watch).wait_ready()
        page.evaluate("window.jupyterapp.commands.execute('apputils:licenses')")
        expect(page.locator(".jp-Licenses-Bundles")).to_contain_text("@jupyterlab/application-top")
        for report_format, suffix, start in (("csv", "csv", "bundle,name,"), ("markdown", "md", "# "),
                                             ("json", "json", "{")):
            with page.expect_download() as started:
                page.evaluate(f"window.jupyterapp.commands.execute('apputils:license-report',"
                              f" {{format: '{report_format}'}})")
            download = started.value
            assert download.suggested_filename == f"jupyterlab-licenses.{suffix}"
            assert Path(download.path()).read_text("utf-8").startswith(start)
        watch.assert_clean()
        page.context.close()
