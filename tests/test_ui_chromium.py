"""The web pages in a real headless Chromium against a real `nbflask run`.

The dashboard listing is drawn by `static/tree.js` from the contents API, so only a browser
exercises it: token login and its redirect, folder navigation (names that need URL quoting
included), the read-only notebook page refusing to run a notebook's script, the login form,
the cookies the browser ends up holding, and no console errors or failed requests on the way.
Runs with and without a `base_url` prefix. Chromium comes from Debian (`apt-get install
chromium`; skipped without it except in CI, which fails); Playwright only drives it, since
`playwright install` cannot download here.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import nbformat
import pytest
from live import TOKEN, start_nbflask
from playwright.sync_api import sync_playwright
from tools import needs_package, program

CHROMIUM = program("chromium", "/usr/bin/chromium")

pytestmark = [pytest.mark.slow, needs_package(CHROMIUM, "chromium")]

# Without the background-networking flags Chromium keeps calling Google's services, which the
# closed network here (and in CI) answers with a flood of failures.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SPACED = "with space #1"  # a folder whose links only work if tree.js quotes each path segment
HOSTILE = "<img src=x onerror=alert(1)>.txt"  # a name tree.js must show as text, never as HTML
LISTING = "#listing li"
LOAD_FAILED = "Failed to load resource: the server responded with a status of"


def notebook(source: str, stdout: str) -> dict:
    """A notebook with a stream output and an HTML output whose script would set window.pwned."""
    cell = nbformat.v4.new_code_cell(source, execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=stdout),
        nbformat.v4.new_output(
            "display_data",
            data={"text/html": "<script>window.pwned = 'html'; alert(1)</script>", "text/plain": "<HTML>"},
        ),
    ]
    return nbformat.v4.new_notebook(cells=[cell])


def put(client, url: str, path: str, model: dict) -> None:
    response = client.put(url + "api/contents/" + quote(path), json=model, timeout=30)
    assert response.status_code in (200, 201), response.text


def make_content(server) -> None:
    """The tree the tests browse, made through the REST API as a client would."""
    client, url = server.session(), server.url
    for folder in ("alpha", "empty", SPACED, "alpha/deeper"):
        put(client, url, folder, {"type": "directory"})
    text = {"type": "file", "format": "text", "content": "plain text\n"}
    for name in ("notes.txt", HOSTILE, "alpha/inside.txt"):
        put(client, url, name, text)
    put(client, url, "report.ipynb", {"type": "notebook", "content": notebook(
        "print('hello from the source')",
        "hello from stdout\n<script>window.pwned = 'stream'; alert('stream')</script>\n",
    )})
    put(client, url, f"{SPACED}/deep note.ipynb", {"type": "notebook", "content": notebook("1 + 1", "two\n")})


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if CHROMIUM is None:  # in CI, where needs_package runs the tests anyway
        pytest.fail("Chromium is not installed: apt-get install chromium (Debian's package)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module", params=["/", "/ipython/"], ids=["root", "prefixed"])
def server(request, tmp_path_factory) -> Iterator:
    tmp_path = tmp_path_factory.mktemp("ui")
    with start_nbflask(tmp_path, {"server": {"base_url": request.param}}) as live:
        make_content(live)
        yield live


class Problems:
    """Console errors, failed requests, error responses and dialogs seen by one page."""

    def __init__(self, page) -> None:
        self.console: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console.append(f"uncaught: {error}"))
        page.on("requestfailed", lambda req: self.requests.append(f"{req.url}: {req.failure}"))
        page.on("response", self._response)
        page.on("dialog", self._dialog)

    def _console(self, message) -> None:
        if message.type == "error":
            self.console.append(f"{message.text} at {message.location.get('url')}")

    def _response(self, response) -> None:
        if response.status >= 400:
            self.requests.append(f"{response.url}: {response.status}")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def expected(self, url: str, status: str) -> None:
        """Forget the one error response a test provoked on purpose (and its console line)."""
        self.requests.remove(f"{url}: {status.split()[0]}")
        self.console.remove(f"{LOAD_FAILED} {status} at {url}")

    def assert_none(self) -> None:
        assert (self.console, self.requests, self.dialogs) == ([], [], [])


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.problems = Problems(tab)
    yield tab
    context.close()


def listed(page) -> list[str]:
    page.wait_for_selector(f"{LISTING} a, {LISTING}.muted:not(:has-text('Loading'))")
    return page.locator(LISTING).all_inner_texts()


def test_token_login_lands_on_a_listing_that_navigates_folders(server, page, tmp_path):
    page.goto(server.url + "?token=" + TOKEN)
    assert page.url == server.url + "tree"
    assert listed(page) == [
        "alpha/", "empty/", f"{SPACED}/", HOSTILE, "notes.txt", "report.ipynb",
    ]
    assert page.locator("#listing img").count() == 0
    if server.url.endswith(f":{server.port}/"):
        page.screenshot(path=tmp_path / "dashboard.png", full_page=True)

    page.get_by_role("link", name="alpha/").click()
    page.wait_for_url(server.url + "tree/alpha")
    assert page.locator("h1").inner_text() == "/alpha"
    assert listed(page) == ["deeper/", "inside.txt"]

    page.goto(server.url + "tree")
    page.get_by_role("link", name="empty/").click()
    page.wait_for_url(server.url + "tree/empty")
    assert listed(page) == ["This folder is empty."]

    page.goto(server.url + "tree")
    page.get_by_role("link", name=f"{SPACED}/").click()
    page.wait_for_url(server.url + "tree/" + quote(SPACED))
    assert page.locator("h1").inner_text() == f"/{SPACED}"
    assert listed(page) == ["deep note.ipynb"]
    page.problems.assert_none()


def test_notebook_page_shows_source_and_output_but_runs_none_of_its_script(server, page):
    page.goto(server.url + "tree/?token=" + TOKEN)
    listed(page)
    page.get_by_role("link", name="report.ipynb").click()
    page.wait_for_url(server.url + "notebooks/report.ipynb")
    assert page.evaluate("window.pwned") is None
    assert page.locator("pre.source").inner_text() == "print('hello from the source')"
    stdout = page.locator("pre.output.stdout").inner_text()
    assert stdout.startswith("hello from stdout\n<script>window.pwned = 'stream'")
    assert page.locator("pre.output", has_text="<HTML>").count() == 1
    page.problems.assert_none()


def test_login_form_rejects_a_wrong_token_then_returns_to_the_page_asked_for(server, page):
    page.goto(server.url + "tree/alpha")
    prefix = "/" + server.url.split("/", 3)[3]
    assert page.url == server.url + "login?next=" + prefix + "tree/alpha"
    page.fill("#password", "not-the-token")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text() == "Invalid credentials"
    page.problems.expected(server.url + "login", "401 (UNAUTHORIZED)")

    page.fill("#password", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "tree/alpha")
    assert listed(page) == ["deeper/", "inside.txt"]
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert set(cookies) == {"_xsrf", "nbflask-session"}
    assert cookies["nbflask-session"]["httpOnly"] and cookies["nbflask-session"]["path"] == prefix
    assert not cookies["_xsrf"]["httpOnly"] and cookies["_xsrf"]["path"] == prefix
    page.problems.assert_none()
