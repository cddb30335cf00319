"""Driving Jupyter's front-ends in a real headless Chromium, and catching what goes wrong.

`Watch` records everything a page shows of a broken server: error responses (4xx/5xx),
failed requests, uncaught page errors, console errors and JupyterLab dialogs. A test names the
few 4xx answers it allows (`Allowed`, each with the reason: Jupyter Server gives the same) and
the dialogs it opened on purpose; anything else fails it. `Lab` and `Tree` are the steps a user
takes in JupyterLab and in Notebook 7's dashboard, by stable selectors (`data-command`
attributes, roles, `.jp-*` classes) so that a front-end upgrade breaks few of them.

Chromium comes from Debian (`apt-get install chromium`); Playwright only drives it, since
`playwright install` cannot download here. Without it the tests are skipped, except in CI.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from live import TOKEN, LiveServer, own_folders, start_nbflask
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Response, sync_playwright
from tools import needs_package, program

from nbflask import passwords

CHROMIUM = program("chromium", "/usr/bin/chromium")
needs_chromium = needs_package(CHROMIUM, "chromium")

# Without the background-networking flags Chromium keeps calling Google's services, which the
# closed network here (and in CI) answers with a flood of failures.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
# A 4xx the page provoked shows once as a response (judged by `Allowed`) and once more as this
# console line, which therefore says nothing new.
LOAD_FAILED = "Failed to load resource: the server responded with a status of"
# Every dialog JupyterLab opens, kept by the page itself so that one closed at once is seen too.
DIALOG_SPY = """
window.__dialogs = [];
const shown = [];
new MutationObserver(() => {
  for (const node of document.querySelectorAll('.jp-Dialog')) {
    if (!shown.some((entry) => entry.node === node)) {
      shown.push({node, seen: {title: '', body: ''}});
      window.__dialogs.push(shown[shown.length - 1].seen);
    }
  }
  for (const {node, seen} of shown) {  // a dialog fills in after it is added: keep the last text
    if (!node.isConnected) continue;
    seen.title = (node.querySelector('.jp-Dialog-header')?.textContent || '').trim();
    seen.body = (node.querySelector('.jp-Dialog-body')?.textContent || '').trim().slice(0, 400);
  }
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:  # in CI, where needs_chromium runs the tests anyway
        pytest.fail("Chromium is not installed: apt-get install chromium (Debian's package)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


PASSWORD = "a long pass phrase"
# The two ways in that the front-ends must both survive: a token link on a server at the root,
# and the password form on a server under a prefix (every URL the pages build must carry it).
DEPLOYMENTS = {
    "token-at-root": {"server": {"base_url": "/"}},
    "password-under-prefix": {
        "server": {"base_url": "/ipython/"},
        "auth": {"password": passwords.hash_password(PASSWORD)},
    },
}


@pytest.fixture(scope="module", params=list(DEPLOYMENTS))
def server(request, tmp_path_factory) -> Iterator[LiveServer]:
    """A real `nbflask run` with real kernels, one per deployment, shared by a module's tests."""
    tmp = tmp_path_factory.mktemp(request.param)
    with start_nbflask(tmp, DEPLOYMENTS[request.param], env=own_folders(tmp)) as live:
        live.uses_password = "auth" in DEPLOYMENTS[request.param]
        yield live


def log_in(page: Page, server: LiveServer, path: str) -> None:
    """Reach `path` as a new user would: by the password form the page redirects to, or by
    the token link at the server's root (which lands on the default page, `/tree`), then
    `path` by the session cookie alone."""
    if server.uses_password:
        page.goto(server.url + path)
        page.locator("input[type=password]").fill(PASSWORD)
        page.locator("button[type=submit]").click()
        page.wait_for_url(re.compile(re.escape(server.url + path) + r"(\?.*)?$"))
    else:
        page.goto(server.url + "?token=" + TOKEN)
        page.wait_for_url(server.url + "tree")
        page.goto(server.url + path)


@dataclass(frozen=True)
class Allowed:
    """A 4xx answer a test accepts: the method, a regex on the URL's path, the status, and why
    (Jupyter Server answers the same, e.g. a front-end asking whether a file exists)."""

    method: str
    path: str
    status: int
    reason: str

    def matches(self, method: str, path: str, status: int) -> bool:
        return (self.method, self.status) == (method, status) and re.fullmatch(self.path, path) is not None


@dataclass(frozen=True)
class KnownError:
    """An uncaught error (or console error) a front-end gives by itself, named with where it
    was seen too: a regex on the message and the reason."""

    pattern: str
    reason: str


@dataclass
class Watch:
    """What the pages of one browser context showed of a server that misbehaves, and how to
    fail a test on it."""

    context: BrowserContext
    allowed: list[Allowed] = field(default_factory=list)
    known_errors: list[KnownError] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    expected_dialogs: list[str] = field(default_factory=list)
    sockets: list[dict] = field(default_factory=list)  # each websocket's URL and kernel_info replies

    def __post_init__(self) -> None:
        self.context.add_init_script(DIALOG_SPY)
        self.context.on("page", lambda page: page.on("websocket", self._websocket))
        self.context.on("response", self._response)
        self.context.on("requestfailed", self._failed)
        self.context.on("weberror", lambda web_error: self._uncaught(web_error.error))
        self.context.on("console", self._console)

    def _response(self, response) -> None:
        if response.status < 400:
            return
        method, path = response.request.method, "/" + response.url.split("/", 3)[3].split("?")[0]
        if not any(rule.matches(method, path, response.status) for rule in self.allowed):
            self.responses.append(f"{method} {response.url} -> {response.status}")

    def _known(self, text: str) -> bool:
        return any(re.search(known.pattern, text) for known in self.known_errors)

    def _uncaught(self, error) -> None:
        if not self._known(str(error.message)):
            self.errors.append(f"uncaught: {error.stack}")

    def _websocket(self, socket) -> None:
        seen = {"url": socket.url, "kernel_infos": 0}
        self.sockets.append(seen)

        def frame(payload: str | bytes) -> None:
            # Text (JSON) and binary (v1 protocol) frames both carry the msg_type as text.
            text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
            seen["kernel_infos"] += '"kernel_info_reply"' in text

        socket.on("framereceived", frame)

    def wait_kernel(self, page: Page, kernel_id: str, timeout: float = 60) -> None:
        """Until the page's websocket to the kernel has had a kernel_info reply: the page is
        connected to a kernel it can run code on."""
        deadline = time.monotonic() + timeout
        channels = f"/api/kernels/{kernel_id}/channels"
        while not any(channels in seen["url"] and seen["kernel_infos"] for seen in self.sockets):
            assert time.monotonic() < deadline, (
                f"kernel {kernel_id} did not answer kernel_info in {timeout} s"
            )
            page.wait_for_timeout(100)

    def _failed(self, request) -> None:
        # A reload or a closed tab aborts what was still in flight: the browser's doing.
        if request.failure != "net::ERR_ABORTED":
            self.errors.append(f"{request.method} {request.url} failed: {request.failure}")

    def _console(self, message) -> None:
        if (
            message.type == "error"
            and not message.text.startswith(LOAD_FAILED)
            and not self._known(message.text)
        ):
            self.errors.append(f"console: {message.text[:500]}")

    def expect_dialog(self, title: str) -> None:
        """A dialog the test opens on purpose (a rename on first save, a restart's question)."""
        self.expected_dialogs.append(title)

    def dialogs(self) -> list[str]:
        """The dialogs the open pages showed that no test step asked for."""
        seen = []
        for page in self.context.pages:
            seen += page.evaluate("window.__dialogs || []")
        unexpected = []
        expected = list(self.expected_dialogs)
        for dialog in seen:
            if dialog["title"] in expected:
                expected.remove(dialog["title"])
            else:
                unexpected.append(f"dialog {dialog['title']!r}: {dialog['body']}")
        return unexpected

    def problems(self) -> list[str]:
        return [*self.responses, *self.errors, *self.dialogs()]

    def assert_clean(self) -> None:
        problems = self.problems()
        assert not problems, "the pages saw:\n" + "\n".join(problems)


def new_page(
    browser: Browser, allowed: list[Allowed], known_errors: list[KnownError] = ()
) -> tuple[Page, Watch]:
    """A fresh browser context (no cookies), watched, with one tab."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(30_000)
    watch = Watch(context, allowed, list(known_errors))
    return context.new_page(), watch


def accept_dialog(page: Page, watch: Watch, title: str | re.Pattern, fill: str | None = None) -> None:
    """Answer the JupyterLab dialog whose title has `title` (typing `fill` into its input first)."""
    dialog = page.locator(".jp-Dialog", has=page.locator(".jp-Dialog-header", has_text=title))
    dialog.wait_for()
    watch.expect_dialog(dialog.locator(".jp-Dialog-header").inner_text().strip())
    if fill is not None:
        field_ = dialog.locator("input").first
        field_.fill(fill)
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    dialog.wait_for(state="detached")


# Every value a status attribute takes from now on, kept on the node.
STATUS_SPY = """(node) => {
  node.__statuses = [];
  new MutationObserver(() => node.__statuses.push(node.dataset.status))
    .observe(node, {attributes: true, attributeFilter: ['data-status']});
}"""


def is_new_session(response) -> bool:
    return response.request.method == "POST" and response.url.split("?")[0].endswith("/api/sessions")


PROMPT_DONE = re.compile(r"\[\d+\]:")


class Steps:
    """A user's steps on one page; the file listing is the same widget in both front-ends."""

    def __init__(self, page: Page, watch: Watch) -> None:
        self.page = page
        self.watch = watch

    @property
    def names(self) -> Locator:
        """The names the file browser shows, in its order (for `expect(...).to_have_text`)."""
        return self.page.locator(".jp-DirListing-content .jp-DirListing-itemText")

    def listed(self, name: str) -> Locator:
        return self.page.locator(
            ".jp-DirListing-item",
            has=self.page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$")),
        )


class Notebook(Steps):
    """A user's steps in an open notebook, the same in JupyterLab (4.x) and Notebook 7."""

    @property
    def notebook(self) -> Locator:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")

    @property
    def cells(self) -> Locator:
        return self.notebook.locator(".jp-Notebook .jp-Cell")

    def wait_kernel_idle(self) -> None:
        self.notebook.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()

    def toolbar(self, command: str) -> None:
        self.notebook.locator(f".jp-NotebookPanel-toolbar [data-command='{command}']").click()

    def type_cell(self, source: str, cell_type: str = "code") -> Locator:
        """Put `source` into the notebook's last cell (the empty one running a cell leaves
        below) as `cell_type`; returns that cell."""
        self.cells.first.wait_for()
        cell = self.cells.nth(self.cells.count() - 1)  # pinned: `last` moves on when it runs
        editor = cell.locator(".cm-content")
        editor.click()
        if cell_type != "code":
            self.notebook.locator(".jp-Notebook-toolbarCellType select").select_option(cell_type)
            editor.click()
        self.page.keyboard.insert_text(source)
        return cell

    def run(self, source: str, cell_type: str = "code", wait: bool = True) -> Locator:
        """Type a cell, run it with Shift+Enter and (unless `wait` is false) wait until the
        kernel has answered it; returns the cell."""
        cell = self.type_cell(source, cell_type)
        self.page.keyboard.press("Shift+Enter")
        if wait and cell_type == "code":
            self.wait_done(cell)
        return cell

    def wait_done(self, cell: Locator) -> None:
        prompt = cell.locator(".jp-InputPrompt")
        prompt.filter(has_text=PROMPT_DONE).wait_for(timeout=60_000)

    def output(self, cell: Locator, mime: str) -> Locator:
        return cell.locator(f".jp-OutputArea-output[data-mime-type='{mime}']")

    def restart_kernel(self) -> None:
        """Restart from the toolbar, answer the question, and wait until the kernel has been
        through a restart and is idle again (idle alone could be the old kernel)."""
        indicator = self.notebook.locator(".jp-Notebook-ExecutionIndicator")
        indicator.evaluate(STATUS_SPY)
        self.toolbar("notebook:restart-kernel")
        accept_dialog(self.page, self.watch, "Restart Kernel?")
        self.page.wait_for_function(
            "(node) => node.__statuses.some((s) => s !== 'idle') && node.dataset.status === 'idle'",
            arg=indicator.element_handle(),
        )

    def wait_kernel_of(self, session: Response) -> None:
        """After the step that opened the notebook (`session`: the answer that made its
        session), until the page is connected to that session's kernel."""
        self.watch.wait_kernel(self.page, session.json()["kernel"]["id"])


class Lab(Notebook):
    """A user's steps in JupyterLab (4.x) besides those in a notebook: the launcher, the file
    browser, the menus."""

    def wait_ready(self) -> None:
        """The shell is drawn, the splash screen gone and the file browser listed."""
        self.page.locator("#jp-main-dock-panel").wait_for()
        self.page.locator("#jupyterlab-splash").wait_for(state="detached")
        self.page.locator(".jp-DirListing-content").first.wait_for(state="attached")

    def new_notebook(self) -> None:
        """A new launcher (the file browser's "+"), and from it a Python notebook whose kernel
        has started and answered."""
        self.browser_command("launcher:create")
        with self.page.expect_response(is_new_session) as created:
            self.page.locator(".jp-LauncherCard[data-category='Notebook']:visible").click()
        self.wait_kernel_of(created.value)
        self.wait_kernel_idle()

    def browser_command(self, command: str) -> None:
        """A button of the file browser's toolbar."""
        self.page.locator(f".jp-FileBrowser-toolbar [data-command='{command}']").click()

    def upload(self, path: Path) -> None:
        """The file browser's upload button (it has no command), answered with `path`."""
        with self.page.expect_file_chooser() as chooser:
            self.page.locator(".jp-FileBrowser-toolbar jp-button[aria-label='Upload Files']").click()
        chooser.value.set_files(path)

    def close_tab(self, name: str) -> None:
        tab = self.page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text=name)
        tab.locator(".lm-TabBar-tabCloseIcon").click()
        tab.wait_for(state="detached")

    def context_command(self, name: str, command: str) -> None:
        """Right-click `name` in the file browser and pick `command` from the menu."""
        self.listed(name).click(button="right")
        self.page.locator(f".lm-Menu [data-command='{command}']").click()

    def rename_in_place(self, name: str) -> None:
        """Type a name into the file browser's in-place editor (after a rename or a new folder)."""
        editor = self.page.locator(".jp-DirListing-editor")
        editor.fill(name)
        editor.press("Enter")
        editor.wait_for(state="detached")

    def menu(self, top: str, *items: str) -> None:
        """Open a top menu and walk its submenus by their labels (`Settings`, `Theme`, ...)."""
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(f"^{top}$")).click()
        for label in items:
            item = self.page.locator(
                ".lm-Menu:visible .lm-Menu-item",
                has=self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(label)}$")),
            )
            item.last.click()


class Tree(Steps):
    """A user's steps in Notebook 7's dashboard (`/tree`)."""

    def new_notebook(self) -> Notebook:
        """New > Python 3: the notebook opens in a new tab, connected to its new kernel."""
        self.page.locator(".lm-MenuBar-item", has_text=re.compile("^New$")).click()
        with self.page.context.expect_page() as opened:
            with self.page.context.expect_event("response", is_new_session) as created:
                self.page.locator(".lm-Menu [data-command='notebook:create-new']").click()
        notebook = Notebook(opened.value, self.watch)
        notebook.wait_kernel_of(created.value)
        notebook.wait_kernel_idle()
        return notebook

    def tab(self, name: str) -> None:
        self.page.locator(".lm-TabBar-tab", has_text=re.compile(f"^{name}$")).click()

    def running_kernel(self, kernel_id: str) -> Locator:
        """The Running tab's entry for a kernel (under its kernelspec; the notebooks using it
        are nested inside)."""
        return self.page.locator(f".jp-RunningSessions-item.jp-mod-kernel[data-context='{kernel_id}']")

    def shut_down(self, entry: Locator) -> None:
        """The entry's own Shut Down button, which shows on hover."""
        entry.hover()
        entry.locator("> .jp-RunningSessions-itemShutdown").click()
