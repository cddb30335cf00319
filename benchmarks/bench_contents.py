"""Time PUT and GET of a 5 MB notebook (2,000 cells) through the contents API.

Runs a real `nbflask run` (file store, in a temp folder) and, when a Jupyter Server is
available, a real `jupyter-server` side by side in the same run, and prints the median
times, throughput, the servers' peak memory and the nbflask/Jupyter ratios. Jupyter Server
is never a project dependency: point --jupyter at its executable in a scratch venv, e.g.

    python3 -m venv /tmp/js-venv && /tmp/js-venv/bin/pip install jupyter_server
    python benchmarks/bench_contents.py --jupyter /tmp/js-venv/bin/jupyter-server

Without it the benchmark reports nbflask alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import requests

TOKEN = "bench-token-0123456789"
CELLS = 2000
DEFAULT_JUPYTER = "/tmp/js-venv/bin/jupyter-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_notebook(target_bytes: int = 4_400_000, salt: str = "") -> dict:
    """2,000 code cells with source and a stream output, about `target_bytes` on disk; a
    different `salt` makes every cell different (a server that remembers cells it has seen
    sees none of them)."""
    per_cell = target_bytes // CELLS
    line = f"value = compute(x, y)  # {salt}" + "z" * 40 + "\n"
    source = (line * (per_cell // 2 // len(line) + 1))[: per_cell // 2]
    text = ("out " * (per_cell // 8 + 1))[: per_cell // 2]
    nb = nbformat.v4.new_notebook()
    for number in range(CELLS):
        cell = nbformat.v4.new_code_cell(source, execution_count=number + 1)
        cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text))
        nb.cells.append(cell)
    return json.loads(nbformat.writes(nb))


class Server:
    """A server subprocess in its own process group, ready when /api answers."""

    def __init__(self, name: str, argv: list[str], url: str, env: dict[str, str], cwd: Path) -> None:
        self.name, self.url = name, url
        self.log = open(cwd / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=cwd,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}; see {cwd / (name + '.log')}")
            try:
                if requests.get(url + "api", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"{name} did not start within 60 s")
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"token {TOKEN}"

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)
        self.log.close()


def start_nbflask(folder: Path) -> Server:
    port = free_port()
    root = folder / "nbflask-root"
    root.mkdir()
    config = folder / "nbflask.yaml"
    config.write_text(
        json.dumps(
            {
                "server": {"ip": "127.0.0.1", "port": port, "open_browser": False},
                "auth": {"token": TOKEN},
                "store": {"class": "file", "root_dir": str(root)},
            }
        )
    )
    nbflask = Path(sys.executable).parent / "nbflask"
    env = {
        "NBFLASK_RUNTIME_DIR": str(folder / "nbflask-runtime"),
        "NBFLASK_DATA_DIR": str(folder / "nbflask-data"),
    }
    argv = [str(nbflask), "run", "--config", str(config)]
    return Server("nbflask", argv, f"http://127.0.0.1:{port}/", env, folder)


def start_jupyter(folder: Path, executable: str) -> Server:
    port = free_port()
    root = folder / "jupyter-root"
    root.mkdir()
    argv = [
        executable, f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={TOKEN}",
        "--ServerApp.open_browser=False", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    env = {
        "JUPYTER_RUNTIME_DIR": str(folder / "jupyter-runtime"),
        "JUPYTER_DATA_DIR": str(folder / "jupyter-data"),
        "JUPYTER_CONFIG_DIR": str(folder / "jupyter-config"),
    }
    return Server("jupyter", argv, f"http://127.0.0.1:{port}/", env, folder)


def timed(repeat: int, action: Callable[[], requests.Response]) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = action()
        elapsed = time.perf_counter() - start
        response.raise_for_status()
        times.append(elapsed)
    return times


def measure(server: Server, body: bytes, repeat: int) -> dict[str, float]:
    url = server.url + "api/contents/bench.ipynb"
    headers = {"Content-Type": "application/json"}
    server.session.put(url, data=body, headers=headers).raise_for_status()  # create + warm up
    server.session.get(url).raise_for_status()
    put_times = timed(repeat, lambda: server.session.put(url, data=body, headers=headers))

    def get() -> requests.Response:
        response = server.session.get(url)
        assert len(response.json()["content"]["cells"]) == CELLS
        return response

    get_times = timed(repeat, get)
    return {
        "put_ms": statistics.median(put_times) * 1000,
        "get_ms": statistics.median(get_times) * 1000,
        "peak_rss_mb": server.peak_rss_mb(),
    }


def add_jupyter_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--jupyter", default=os.environ.get("JUPYTER_SERVER", default),
                        help="jupyter-server executable to compare with (skipped if missing)")


def side_by_side(jupyter: str, measure: Callable[[Server], dict[str, float]]) -> dict[str, dict[str, float]]:
    """Start nbflask, then Jupyter Server if `jupyter` is installed, one at a time in a temp
    folder, and return what `measure` found on each, by server name."""
    results: dict[str, dict[str, float]] = {}
    folder = Path(tempfile.mkdtemp(prefix="nbflask-bench-"))
    try:
        candidates = [("nbflask", lambda: start_nbflask(folder))]
        if shutil.which(jupyter):
            candidates.append(("jupyter", lambda: start_jupyter(folder, jupyter)))
        else:
            print(f"jupyter-server not found at {jupyter}: reporting nbflask alone")
        for name, start in candidates:
            server = start()
            try:
                results[name] = measure(server)
            finally:
                server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed requests per operation")
    parser.add_argument("--mb", type=float, default=5, help="notebook size on disk, in MB (about)")
    add_jupyter_option(parser, DEFAULT_JUPYTER)
    args = parser.parse_args()

    notebook = make_notebook(int(args.mb * 880_000))
    body = json.dumps({"type": "notebook", "format": "json", "content": notebook}).encode()
    size_mb = len(nbformat.writes(nbformat.from_dict(notebook)).encode()) / 1e6
    print(
        f"notebook: {len(notebook['cells'])} cells, {size_mb:.1f} MB on disk,"
        f" {len(body) / 1e6:.1f} MB PUT body; median of {args.repeat} requests each"
    )

    results = side_by_side(args.jupyter, lambda server: measure(server, body, args.repeat))

    print(f"{'server':<10}{'PUT ms':>10}{'GET ms':>10}{'PUT MB/s':>10}{'GET MB/s':>10}{'peak RSS MB':>13}")
    for name, result in results.items():
        print(
            f"{name:<10}{result['put_ms']:>10.0f}{result['get_ms']:>10.0f}"
            f"{size_mb / result['put_ms'] * 1000:>10.1f}{size_mb / result['get_ms'] * 1000:>10.1f}"
            f"{result['peak_rss_mb']:>13.0f}"
        )
    if "jupyter" in results:
        ours, theirs = results["nbflask"], results["jupyter"]
        print(
            f"nbflask/jupyter time ratio: PUT {ours['put_ms'] / theirs['put_ms']:.2f},"
            f" GET {ours['get_ms'] / theirs['get_ms']:.2f} (below 1 = nbflask faster)"
        )


if __name__ == "__main__":
    main()
