"""Time JupyterLab page loads up to a usable notebook: nbflask against Jupyter Server.

One run starts a real `nbflask run` and, side by side, a real Jupyter Server with jupyterlab
(from a scratch venv, never a project dependency), puts the same small notebook in each, and
in headless Chromium loads `/lab/tree/bench.ipynb` over and over:

- cold: a fresh browser context (empty cache, no cookies: the token link) and no kernel
  running, so the load includes starting one;
- warm: a reload of that page in the same context, with its kernel still running.

A load is done when the notebook's cells are drawn, the page has the kernel's kernel_info
reply on its websocket and the kernel shows idle: the user can run a cell. It prints, per
server, the median time to that point and to the first drawn cell, the bytes the browser
received over the network (CDP `encodedDataLength`: headers and bodies, nothing served from
its cache) and the number of requests, then the nbflask/Jupyter ratios. The goal: each load
at most 0.8x Jupyter Server's time, and warm loads transfer almost nothing.

    /work/jsvenv/bin/pip install jupyterlab      # scratch venv, not ours
    python benchmarks/bench_pages.py --jupyter /work/jsvenv/bin/jupyter-lab --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
from live import TOKEN, LiveServer, free_port, start_nbflask  # noqa: E402
from ui_tools import CHROMIUM, CHROMIUM_ARGS, VIEWPORT  # noqa: E402

NOTEBOOK = "bench.ipynb"
DEFAULT_JUPYTER = "/work/jsvenv/bin/jupyter-lab"


def make_notebook() -> dict:
    """Twenty cells with source and a stream output each: a small working notebook."""
    cells = []
    for number in range(20):
        cell = nbformat.v4.new_code_cell(
            f"values = [x * {number} for x in range(10)]\nprint(values)", execution_count=number + 1
        )
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=str([x * number for x in range(10)]))
        ]
        cells.append(cell)
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    return notebook


def start_jupyter(folder: Path, executable: str) -> LiveServer:
    """Jupyter Server with jupyterlab, its config, data and workspaces kept in `folder`."""
    root = folder / "notebooks"
    root.mkdir()
    port = free_port()
    argv = [
        executable,
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={TOKEN}",
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    env = {
        name: str(folder / name.lower())
        for name in (
            "JUPYTER_CONFIG_DIR",
            "JUPYTER_DATA_DIR",
            "JUPYTER_RUNTIME_DIR",
            "JUPYTERLAB_SETTINGS_DIR",
            "JUPYTERLAB_WORKSPACES_DIR",
        )
    }
    return LiveServer(argv, f"http://127.0.0.1:{port}/", cwd=folder, env=env, log=folder / "server.log")


@dataclass
class Load:
    """One page load: seconds to the first drawn cell and to a usable notebook, bytes, requests."""

    drawn: float
    usable: float
    received: int
    requests: int


@dataclass
class Traffic:
    """What the network delivered to one page, from the DevTools protocol."""

    received: int = 0
    requests: int = 0
    kernel_ready: bool = False

    def attach(self, page: Page) -> None:
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.loadingFinished", self._finished)
        page.on("websocket", self._websocket)

    def _finished(self, event: dict) -> None:
        self.received += int(event.get("encodedDataLength", 0))
        self.requests += 1

    def _websocket(self, socket) -> None:
        def frame(payload: str | bytes) -> None:
            text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
            if '"kernel_info_reply"' in text:
                self.kernel_ready = True

        socket.on("framereceived", frame)


def wait_usable(page: Page, traffic: Traffic, started: float) -> Load:
    """Until the notebook is drawn and its kernel idle and answered; the times since `started`."""
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator(".jp-Cell .cm-content").first.wait_for(timeout=120_000)
    drawn = time.perf_counter() - started
    deadline = time.monotonic() + 120
    while not traffic.kernel_ready:
        if time.monotonic() > deadline:
            raise RuntimeError("the kernel never answered kernel_info")
        page.wait_for_timeout(10)
    panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=120_000)
    return Load(drawn, time.perf_counter() - started, traffic.received, traffic.requests)


def shut_down_kernels(server: LiveServer, keep: frozenset[str] = frozenset()) -> None:
    """Every session and kernel but the kernels in `keep` (another benchmark's)."""
    client = server.session()
    for session in client.get(server.url + "api/sessions", timeout=30).json():
        client.delete(server.url + "api/sessions/" + session["id"], timeout=30)
    for kernel in client.get(server.url + "api/kernels", timeout=30).json():
        if kernel["id"] not in keep:
            client.delete(server.url + "api/kernels/" + kernel["id"], timeout=30)


def cold_then_warm(browser, server: LiveServer, keep: frozenset[str] = frozenset()) -> tuple[Load, Load]:
    """A cold load in a fresh context with no kernel of its own running, then a warm reload."""
    shut_down_kernels(server, keep)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        traffic = Traffic()
        traffic.attach(page)
        started = time.perf_counter()
        page.goto(server.url + f"lab/tree/{NOTEBOOK}?token={TOKEN}")
        cold = wait_usable(page, traffic, started)
        page.wait_for_load_state("networkidle")
        traffic = Traffic()
        traffic.attach(page)
        started = time.perf_counter()
        page.reload()
        warm = wait_usable(page, traffic, started)
        return cold, warm
    finally:
        context.close()


def summary(loads: list[Load]) -> dict[str, float]:
    return {
        "drawn": statistics.median(load.drawn for load in loads),
        "usable": statistics.median(load.usable for load in loads),
        "received": statistics.median(load.received for load in loads),
        "requests": statistics.median(load.requests for load in loads),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jupyter", default=DEFAULT_JUPYTER, help="jupyter-lab in a scratch venv")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if CHROMIUM is None:
        sys.exit("Chromium is not installed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "nbflask").mkdir()
        env = {
            "NBFLASK_DATA_DIR": str(folder / "nbflask-data"),
            "NBFLASK_RUNTIME_DIR": str(folder / "nbflask-run"),
        }
        servers = {"nbflask": start_nbflask(folder / "nbflask", env=env)}
        if Path(args.jupyter).exists():
            (folder / "jupyter").mkdir()
            servers["jupyter"] = start_jupyter(folder / "jupyter", args.jupyter)
        else:
            print(f"no Jupyter Server at {args.jupyter}: nbflask alone")
        try:
            for server in servers.values():
                model = {"type": "notebook", "content": make_notebook()}
                reply = server.session().put(server.url + f"api/contents/{NOTEBOOK}", json=model, timeout=30)
                reply.raise_for_status()
            results: dict[str, dict[str, list[Load]]] = {name: {"cold": [], "warm": []} for name in servers}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for _ in range(args.runs):  # interleaved, so that the machine's load hits both alike
                    for name, server in servers.items():
                        cold, warm = cold_then_warm(browser, server)
                        results[name]["cold"].append(cold)
                        results[name]["warm"].append(warm)
                browser.close()
        finally:
            for server in servers.values():
                server.stop()
    report(results, args.runs)
    return 0


def report(results: dict[str, dict[str, list[Load]]], runs: int) -> None:
    print(f"JupyterLab /lab/tree/{NOTEBOOK}, medians of {runs} runs")
    print(f"{'server':8} {'load':5} {'drawn s':>8} {'usable s':>9} {'received KB':>12} {'requests':>9}")
    medians = {
        name: {kind: summary(loads) for kind, loads in kinds.items()} for name, kinds in results.items()
    }
    for name, kinds in medians.items():
        for kind, median in kinds.items():
            print(
                f"{name:8} {kind:5} {median['drawn']:8.2f} {median['usable']:9.2f} "
                f"{median['received'] / 1024:12.1f} {median['requests']:9.0f}"
            )
    if "jupyter" in medians:
        print("nbflask / Jupyter Server (goal: time at most 0.8)")
        for kind in ("cold", "warm"):
            ours, theirs = medians["nbflask"][kind], medians["jupyter"][kind]
            print(
                f"  {kind}: drawn {ours['drawn'] / theirs['drawn']:.2f}x, usable "
                f"{ours['usable'] / theirs['usable']:.2f}x, bytes "
                f"{ours['received'] / max(theirs['received'], 1):.2f}x"
            )


if __name__ == "__main__":
    sys.exit(main())
