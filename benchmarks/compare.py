"""nbflask against Jupyter Server and a direct ZeroMQ client, side by side in one run.

    .venv/bin/python benchmarks/compare.py [--rounds 3] [--quick] [--skip pages,swift]

On loopback it starts nbflask under `nbflask run` and under gunicorn (2 gevent workers),
Jupyter Server (a scratch venv, iopub rate limits off, the same ipykernel as nbflask through
its own kernelspec), and a direct ZeroMQ client on ipykernels it launches itself (the
physical limit). Then, round after round, every measurement takes every server in turn (so a
busy moment on the shared machine hits all alike):

  * `1+1` round trips, sequential, on the legacy JSON and the v1 websocket protocols;
  * 40 websockets on 4 kernels, each executing `1+1` back to back: executions/s and latency;
  * 64 KiB stdout messages, flushed, in MB/s; 200 display_data messages of 100 KiB;
  * PUT and GET of a 5 MB, 2,000-cell notebook, again (an autosave, a reload) and new to the
    server (every cell changed; a file another program wrote), 3 times a round (the median);
  * the servers' memory (every process but the kernels, RSS summed), idle and after the
    concurrency run;
  * kernel start (POST /api/kernels, or the launch) to the kernel_info_reply, 3 times a round;
  * the Swift requests one save of a new, and of an existing, notebook makes (nbflask alone);
  * JupyterLab page loads in headless Chromium, cold and warm (benchmarks/bench_pages.py).

Clients speak only the REST API and the websocket protocols, as Jupyter's front-ends do.
It prints a Markdown table of medians (min-max over the rounds) and the ratios to the
reference each target names, marks every target met or not, and writes the table to
benchmarks/results/compare-<date>.md. Jupyter Server comes from ~/.cache/nbflask/bench-venv
(built on first use by tests/support/scratch-venv.sh from benchmarks/bench-constraints.txt, with
jupyterlab for the page loads), never from nbflask's dependencies.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import requests
import zmq

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "support"))
sys.path.insert(0, str(HERE))

import bench_contents  # noqa: E402
from bench_kernels import Direct, RawWebsocket, Through  # noqa: E402
from live import TOKEN, LiveServer, free_port, start_gunicorn, start_nbflask  # noqa: E402

from nbflask.protocol import wire  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nbflask"
BENCH_VENV = CACHE / "bench-venv"
FALLBACK_VENV = CACHE / "jupyter-server-venv"
NBFLASK_RUN, GUNICORN, JUPYTER, DIRECT = "nbflask run", "nbflask gunicorn", "Jupyter Server", "direct"


# --- clients -------------------------------------------------------------------------------


class Websocket(Through):
    """A Jupyter client on a server's kernel websocket, legacy JSON or v1 binary, with its own
    session id and any request type (bench_kernels' client reads and closes the same way)."""

    def __init__(self, base_url: str, kernel_id: str, v1: bool = False) -> None:
        self.v1 = v1
        url = base_url + f"api/kernels/{kernel_id}/channels?token={TOKEN}&session_id={uuid.uuid4().hex}"
        self.ws = RawWebsocket(url, wire.V1_SUBPROTOCOL if v1 else None)
        self.session = uuid.uuid4().hex

    def send(self, code: str, msg_type: str = "execute_request") -> str:
        content = {"code": code, "silent": False} if msg_type == "execute_request" else {}
        message = wire.new_message(msg_type, content, session=self.session)
        if self.v1:
            self.ws.send(wire.v1_pack("shell", message.parts()))
        else:
            self.ws.send(json.dumps({**message.to_dict("shell"), "buffers": []}).encode(), text=True)
        return message.msg_id


class DirectClient(Direct):
    """bench_kernels' direct client on one shared ZeroMQ context (one IO thread for all, as
    a server has), with kernel_info requests too."""

    def __init__(self, connection: dict) -> None:
        real = zmq.Context
        zmq.Context = zmq.Context.instance  # type: ignore[misc] - Direct makes its own context
        try:
            super().__init__(connection)
        finally:
            zmq.Context = real  # type: ignore[misc]

    def send(self, code: str, msg_type: str = "execute_request") -> str:
        content = {"code": code, "silent": False} if msg_type == "execute_request" else {}
        message = wire.new_message(msg_type, content, session=self.session)
        self.shell.send_multipart(self.signer.serialize(message))
        return message.msg_id

    def close(self) -> None:
        self.shell.close(linger=0)
        self.iopub.close(linger=0)


@dataclass
class Seen:
    """What one execution brought back."""

    stdout: int = 0
    displays: int = 0
    display_bytes: int = 0


def execute(client, code: str) -> Seen:
    """Run `code`; returns once its reply and its idle status are in."""
    msg_id = client.send(code)
    replied = idle = False
    seen = Seen()
    while not (replied and idle):
        for channel, header, parent, content in client.receive():
            if parent.get("msg_id") != msg_id:
                continue
            kind = header["msg_type"]
            if channel == "shell":
                replied = True
            elif kind == "stream":
                seen.stdout += len(content["text"])
            elif kind == "display_data":
                seen.displays += 1
                seen.display_bytes += len(content["data"]["text/plain"])
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
    return seen


def kernel_info(client, iopub: bool = False) -> None:
    """Until the kernel_info_reply to our own request; with `iopub`, asked again until its
    iopub status arrives too (a new ZeroMQ subscription takes a moment to reach the kernel)."""
    while True:
        msg_id = client.send("", "kernel_info_request")
        replied = seen = False
        while not replied:
            for channel, header, parent, _ in client.receive():
                if parent.get("msg_id") != msg_id:
                    continue
                replied = replied or (channel == "shell" and header["msg_type"] == "kernel_info_reply")
                seen = seen or channel == "iopub"
        if seen or not iopub:
            return
        time.sleep(0.05)


# --- the servers ---------------------------------------------------------------------------


def kernelspec(folder: Path) -> Path:
    """A data folder whose python3 kernelspec runs nbflask's own ipykernel, so that every
    server drives the same kernel."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            }
        )
    )
    return folder


def jupyter_venv(pages: bool) -> Path:
    """The bench venv (Jupyter Server with jupyterlab), built if missing; the
    gateway tests' Jupyter Server venv when page loads are not wanted and it exists."""
    if (
        not pages
        and (FALLBACK_VENV / ".nbflask-ready").exists()
        and not (BENCH_VENV / ".nbflask-ready").exists()
    ):
        return FALLBACK_VENV
    out = subprocess.run(
        [
            "bash",
            str(REPO / "tests" / "support" / "scratch-venv.sh"),
            str(BENCH_VENV),
            str(HERE / "bench-constraints.txt"),
            "jupyter-lab --version",
            "jupyter_server",
            "jupyterlab",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def start_jupyter(folder: Path, venv: Path) -> LiveServer:
    root = folder / "notebooks"
    root.mkdir(parents=True)
    port = free_port()
    argv = [
        str(venv / "bin" / "jupyter-server"),
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={TOKEN}",
        "--ZMQChannelsWebsocketConnection.limit_rate=False",  # iopub rate limits off
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    env = {
        name: str(folder / name.lower())
        for name in (
            "JUPYTER_CONFIG_DIR",
            "JUPYTER_RUNTIME_DIR",
            "JUPYTERLAB_SETTINGS_DIR",
            "JUPYTERLAB_WORKSPACES_DIR",
        )
    }
    env["JUPYTER_DATA_DIR"] = str(kernelspec(folder / "data"))
    return LiveServer(argv, f"http://127.0.0.1:{port}/", cwd=folder, env=env, log=folder / "server.log")


class DirectKernels:
    """ipykernels launched straight from a connection file: no server in between."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        self.processes: list[subprocess.Popen] = []

    def launch(self) -> dict:
        key = uuid.uuid4().hex
        connection = {
            "transport": "tcp",
            "ip": "127.0.0.1",
            "key": key,
            "signature_scheme": "hmac-sha256",
            **{f"{name}_port": free_port() for name in ("shell", "iopub", "stdin", "control", "hb")},
        }
        path = self.folder / f"kernel-{key}.json"
        path.write_text(json.dumps(connection))
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "ipykernel_launcher", "-f", str(path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )
        )
        return connection

    def stop(self, process: subprocess.Popen | None = None) -> None:
        for proc in [process] if process else self.processes:
            proc.kill()
            proc.wait(10)
        self.processes = [proc for proc in self.processes if proc.poll() is None]


class Target:
    """One thing measured: a server with its kernels, or the direct client."""

    def __init__(
        self,
        name: str,
        server: LiveServer | None,
        direct: DirectKernels | None = None,
        root: Path | None = None,
    ) -> None:
        self.name, self.server, self.direct = name, server, direct
        self.root = root  # the server's notebook folder
        self.kernels: list[str | dict] = []
        self.http = server.session() if server else None

    def start_kernel(self) -> str | dict:
        if self.direct:
            return self.direct.launch()
        reply = self.http.post(self.server.url + "api/kernels", json={"name": "python3"}, timeout=60)
        reply.raise_for_status()
        return reply.json()["id"]

    def stop_kernel(self, kernel: str | dict) -> None:
        if self.direct:
            self.direct.stop(self.direct.processes[-1])
        else:
            self.http.delete(self.server.url + f"api/kernels/{kernel}", timeout=60)

    def client(self, kernel: str | dict, v1: bool = False):
        if self.direct:
            return DirectClient(kernel)
        return Websocket(self.server.url, kernel, v1)

    def ready_client(self, kernel: str | dict, v1: bool = False):
        """A client whose kernel has answered, with the warm-up executions done."""
        deadline = time.monotonic() + 60
        while True:
            client = self.client(kernel, v1)
            try:
                kernel_info(client, iopub=True)
                execute(client, "1+1")
                return client
            except (ConnectionError, OSError):
                client.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def memory_mib(self, proportional: bool = False) -> float:
        """RSS of the server's processes summed, kernels (and what they started) left out;
        `proportional`: PSS instead, where pages the processes share (gunicorn's forked
        workers, shared libraries) count once, split between them."""
        if not self.server:
            return float("nan")
        children: dict[int, list[int]] = {}
        for status in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = status.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(status.parent.name))
        source, field = ("smaps_rollup", "Pss:") if proportional else ("status", "VmRSS:")
        total, todo = 0, [self.server.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                if b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue
                for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
                    if line.startswith(field):
                        total += int(line.split()[1])
            except OSError:
                continue
            todo += children.get(pid, [])
        return total / 1024


# --- measurements ----------------------------------------------------------------------------


@dataclass
class Results:
    """Samples per metric and target, over the rounds (each round adds one value)."""

    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, metric: str, target: str, value: float) -> None:
        self.values.setdefault(metric, {}).setdefault(target, []).append(value)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def round_trips(targets: list[Target], executions: int) -> dict[tuple[str, bool], list[float]]:
    """Sequential `1+1` round trips on each target's first kernel, legacy JSON and v1, taking
    turns execution by execution, so a busy moment of the shared machine hits all alike."""
    clients = {
        (target.name, v1): target.ready_client(target.kernels[0], v1)
        for v1 in (False, True)
        for target in targets
    }
    samples: dict[tuple[str, bool], list[float]] = {key: [] for key in clients}
    try:
        for _ in range(executions):
            for key, client in clients.items():
                started = time.perf_counter()
                execute(client, "1+1")
                samples[key].append(time.perf_counter() - started)
        return samples
    finally:
        for client in clients.values():
            client.close()


def concurrency(target: Target, kernels: list, sockets: int, seconds: float) -> tuple[float, list[float]]:
    """`sockets` clients spread over `kernels`, each executing `1+1` back to back for `seconds`:
    executions per second, and every execution's latency."""
    clients = [target.ready_client(kernels[number % len(kernels)]) for number in range(sockets)]
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(sockets + 1)
    stop_at = [0.0]

    def work(client) -> None:
        mine = []
        start.wait()
        while time.perf_counter() < stop_at[0]:
            began = time.perf_counter()
            execute(client, "1+1")
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    for client in clients:
        client.close()
    return len(latencies) / elapsed, latencies


def stream_rate(target: Target, kernel, megabytes: int) -> float:
    """MB/s of `megabytes` MiB of stdout sent as flushed 64 KiB messages."""
    client = target.ready_client(kernel)
    try:
        chunks = megabytes * 16
        code = f"import sys\nfor i in range({chunks}):\n    sys.stdout.write('x' * 65536); sys.stdout.flush()"
        started = time.perf_counter()
        seen = execute(client, code)
        elapsed = time.perf_counter() - started
        assert seen.stdout == chunks * 65536, f"{target.name}: {seen.stdout} bytes of stdout"
        return megabytes / elapsed
    finally:
        client.close()


def displays(target: Target, kernel, count: int) -> float:
    """Seconds for `count` display_data messages of 100 KiB each."""
    client = target.ready_client(kernel)
    try:
        code = (
            f"from IPython.display import display\nfor i in range({count}):\n"
            "    display({'text/plain': 'y' * 102400}, raw=True)"
        )
        started = time.perf_counter()
        seen = execute(client, code)
        elapsed = time.perf_counter() - started
        assert seen.displays == count and seen.display_bytes == count * 102400, f"{target.name}: {seen}"
        return elapsed
    finally:
        client.close()


def kernel_start(target: Target) -> float:
    """Seconds from asking for a kernel to its kernel_info_reply on a fresh client."""
    started = time.perf_counter()
    kernel = target.start_kernel()
    client = None
    deadline = time.monotonic() + 60
    while client is None:
        try:
            client = target.client(kernel)
        except (ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    kernel_info(client)
    elapsed = time.perf_counter() - started
    client.close()
    target.stop_kernel(kernel)
    return elapsed


def contents(target: Target, body: bytes) -> dict[str, float]:
    """Seconds for PUT and GET of the big notebook, to the last byte of the reply: again (after
    one warm-up of each, as an autosave and a reload do), and new to the server (a save of
    cells it has never seen; a read of a file another program wrote)."""
    url = target.server.url + "api/contents/"
    salt = uuid.uuid4().hex
    new_body = json.dumps({"type": "notebook", "content": bench_contents.make_notebook(salt=salt)}).encode()
    outside = nbformat.writes(nbformat.from_dict(bench_contents.make_notebook(salt=salt[::-1]))) + "\n"
    (target.root / f"outside-{salt}.ipynb").write_text(outside, encoding="utf-8")
    headers = {"Content-Type": "application/json"}

    def put(path: str, data: bytes) -> Callable[[], requests.Response]:
        return lambda: target.http.put(url + path, data=data, headers=headers, timeout=120)

    def get(path: str) -> Callable[[], requests.Response]:
        return lambda: target.http.get(url + path, timeout=120)

    steps = {
        "warm-up put": put("big.ipynb", body), "warm-up get": get("big.ipynb"),
        "put": put("big.ipynb", body), "get": get("big.ipynb"),
        "put_new": put(f"new-{salt}.ipynb", new_body), "get_new": get(f"outside-{salt}.ipynb"),
    }
    times = {}
    for name, action in steps.items():
        started = time.perf_counter()
        reply = action()  # the whole body is in when it returns
        times[name] = time.perf_counter() - started
        reply.raise_for_status()
        # Checked after the clock stops: decoding 5 MB of JSON is the client's time.
        if name.startswith("get"):
            assert len(reply.json()["content"]["cells"]) == bench_contents.CELLS
    return {name: times[name] for name in ("put", "get", "put_new", "get_new")}


class SwiftCount:
    """nbflask on a real Swift; counts the requests the Swift proxy logs for one save."""

    def __init__(self, folder: Path) -> None:
        from swift_fixtures import SwiftServer

        (folder / "swift").mkdir(parents=True)
        self.swift = SwiftServer(folder / "swift")
        self.swift.start()
        (folder / "nbflask").mkdir()
        store = {"class": "swift", **self.swift.options("bench"), "timeout": 30}
        self.server = start_nbflask(folder / "nbflask", {"store": store})
        self.http = self.server.session()
        self.http.put(
            self.server.url + "api/contents/warm.ipynb", json=self.model(), timeout=60
        ).raise_for_status()

    @staticmethod
    def model() -> dict:
        return {
            "type": "notebook",
            "format": "json",
            "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
        }

    def requests_for(self, path: str) -> int:
        log = self.swift.folder / "log" / "proxy.log"
        before = self.logged(log)
        self.http.put(
            self.server.url + f"api/contents/{path}", json=self.model(), timeout=60
        ).raise_for_status()
        time.sleep(0.3)  # the proxy logs after it answers
        return self.logged(log) - before

    @staticmethod
    def logged(log: Path) -> int:
        """Client requests in the proxy log: proxy-logging names the client's address on them,
        and "-" on the proxy's own subrequests."""
        pattern = re.compile(r"proxy-server: 127\.0\.0\.1 \S+ \S+ [A-Z]+ /")
        return sum(1 for line in log.read_text(errors="replace").splitlines() if pattern.search(line))

    def stop(self) -> None:
        self.server.stop()
        self.swift.stop()


def page_loads(browser, target: Target) -> tuple[float, float]:
    from bench_pages import cold_then_warm

    try:
        cold, warm = cold_then_warm(browser, target.server, frozenset(target.kernels))
    except Exception:
        print(
            f"{target.name}: page load failed; its log ends with:\n{target.server.log()[-3000:]}",
            file=sys.stderr,
        )
        raise
    return cold.usable, warm.usable


# --- the table -------------------------------------------------------------------------------


@dataclass
class Row:
    """A table row: a metric, the reference its ratio is to, and its target."""

    metric: str
    label: str
    unit: str
    scale: float = 1.0
    reference: str | None = None  # the target the ratios are to
    goal: float | None = None  # the ratio the target allows
    higher_is_better: bool = False
    digits: int = 1


ROWS = [
    Row("rtt_legacy", "execute `1+1` round trip, legacy JSON, median", "ms", 1000, DIRECT, 1.2),
    Row("rtt_legacy_p99", "same, p99", "ms", 1000, DIRECT, 1.5),
    Row("rtt_v1", "execute `1+1` round trip, v1 protocol, median", "ms", 1000, DIRECT, 1.2),
    Row("rtt_v1_p99", "same, p99", "ms", 1000, DIRECT, 1.5),
    Row("conc_rate", "40 websockets on 4 kernels, throughput", "exec/s", 1, DIRECT, 0.9, True, 0),
    Row("conc_p99", "same, p99 latency", "ms", 1000, DIRECT, 1.2, digits=0),
    Row("stream", "64 KiB iopub stream", "MB/s", 1, DIRECT, 0.95, True),
    Row("displays", "200 display_data of 100 KiB", "ms", 1000, DIRECT, None, digits=0),
    Row("put", "PUT of a 5 MB notebook (2,000 cells)", "ms", 1000, JUPYTER, 0.5, digits=0),
    Row("get", "GET of the same", "ms", 1000, JUPYTER, 0.5, digits=0),
    Row("put_new", "PUT of one, every cell new to the server", "ms", 1000, JUPYTER, None, digits=0),
    Row("get_new", "GET of one another program wrote", "ms", 1000, JUPYTER, None, digits=0),
    Row("mem_idle", "server memory idle, before any kernel (RSS, all processes)", "MiB", 1, JUPYTER, 0.8),
    Row("mem_after", "memory after the concurrency run (RSS, kernels excluded)", "MiB", 1, JUPYTER, 0.8),
    Row("mem_idle_pss", "server memory idle (PSS: shared pages once)", "MiB", 1, JUPYTER, None),
    Row("mem_after_pss", "memory after the concurrency run (PSS)", "MiB", 1, JUPYTER, None),
    Row("kernel_start", "kernel start to kernel_info_reply", "ms", 1000, DIRECT, 1.1, digits=0),
    Row("swift_new", "Swift: requests for one save of a new notebook", "", 1, None, 4, digits=0),
    Row("swift_existing", "Swift: requests for one save of an existing one", "", 1, None, 3, digits=0),
    Row("page_cold", "JupyterLab notebook page, cold load to usable", "ms", 1000, JUPYTER, 0.8, digits=0),
    Row("page_warm", "JupyterLab notebook page, warm reload to usable", "ms", 1000, JUPYTER, 0.8, digits=0),
]
COLUMNS = [NBFLASK_RUN, GUNICORN, JUPYTER, DIRECT]


def cell(row: Row, values: list[float] | None) -> str:
    if not values:
        return "-"
    median, low, high = (
        statistics.median(values) * row.scale,
        min(values) * row.scale,
        max(values) * row.scale,
    )
    text = f"{median:.{row.digits}f}"
    if len(values) > 1 and high > low:
        text += f" ({low:.{row.digits}f}-{high:.{row.digits}f})"
    return text


def verdict(row: Row, samples: dict[str, list[float]]) -> tuple[str, str]:
    """Ratios of the nbflask columns to the reference, and whether the target is met."""
    ratios, met = [], []
    for name in (NBFLASK_RUN, GUNICORN):
        if not samples.get(name):
            continue
        ours = statistics.median(samples[name])
        if row.reference is None:
            ratios.append(f"{ours:.0f}")
            met.append(row.goal is not None and ours <= row.goal)
            continue
        if not samples.get(row.reference):
            continue
        ratio = ours / statistics.median(samples[row.reference])
        ratios.append(f"{ratio:.2f}x")
        if row.goal is not None:
            met.append(ratio >= row.goal if row.higher_is_better else ratio <= row.goal)
    if row.goal is None:
        return " / ".join(ratios), f"no target (ratio to {row.reference})"
    goal = f"{'>=' if row.higher_is_better else '<='} {row.goal}" + (
        f"x {row.reference}" if row.reference else ""
    )
    if not met:
        return " / ".join(ratios), f"{goal}: not measured"
    return " / ".join(ratios), f"{goal}: " + ("**met**" if all(met) else "NOT met")


def table(results: Results, header: str) -> str:
    lines = [
        header,
        "",
        "| metric | " + " | ".join(COLUMNS) + " | ratio: nbflask run / gunicorn | target |",
        "|---" * (len(COLUMNS) + 3) + "|",
    ]
    for row in ROWS:
        samples = results.values.get(row.metric, {})
        if not samples:
            continue
        unit = f" ({row.unit})" if row.unit else ""
        ratio, target = verdict(row, samples)
        lines.append(
            f"| {row.label}{unit} | "
            + " | ".join(cell(row, samples.get(name)) for name in COLUMNS)
            + f" | {ratio} | {target} |"
        )
    return "\n".join(lines) + "\n"


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Plan:
    rounds: int
    executions: int
    seconds: float
    megabytes: int
    display_count: int
    skip: set[str]
    repeats: int = 3  # kernel starts and PUT/GET timings per server per round


def measure_round(
    plan: Plan, targets: list[Target], results: Results, body: bytes, browser, swift: SwiftCount | None
) -> None:
    kernels = {target.name: target.kernels for target in targets}
    for (name, v1), samples in round_trips(targets, plan.executions).items():
        metric = "rtt_v1" if v1 else "rtt_legacy"
        results.add(metric, name, statistics.median(samples))
        results.add(metric + "_p99", name, percentile(samples, 0.99))
    for target in targets:
        rate, latencies = concurrency(target, kernels[target.name][:4], 40, plan.seconds)
        results.add("conc_rate", target.name, rate)
        results.add("conc_p99", target.name, percentile(latencies, 0.99))
        if target.server:
            results.add("mem_after", target.name, target.memory_mib())
            results.add("mem_after_pss", target.name, target.memory_mib(proportional=True))
    for target in targets:
        results.add("stream", target.name, stream_rate(target, kernels[target.name][0], plan.megabytes))
    for target in targets:
        results.add("displays", target.name, displays(target, kernels[target.name][0], plan.display_count))
    # One sample of these is at the mercy of a busy moment: each round takes the median of a
    # few, the servers taking turns.
    starts: dict[str, list[float]] = {target.name: [] for target in targets}
    saves: dict[tuple[str, str], list[float]] = {}
    for _ in range(plan.repeats):
        for target in targets:
            starts[target.name].append(kernel_start(target))
            if target.server:
                for metric, seconds in contents(target, body).items():
                    saves.setdefault((metric, target.name), []).append(seconds)
    for name, samples in starts.items():
        results.add("kernel_start", name, statistics.median(samples))
    for (metric, name), samples in saves.items():
        results.add(metric, name, statistics.median(samples))
    if swift:
        results.add("swift_new", NBFLASK_RUN, swift.requests_for(f"new-{uuid.uuid4().hex[:8]}.ipynb"))
        results.add("swift_existing", NBFLASK_RUN, swift.requests_for("warm.ipynb"))
    if browser:
        for target in targets:
            if target.name in (NBFLASK_RUN, GUNICORN, JUPYTER):
                cold, warm = page_loads(browser, target)
                results.add("page_cold", target.name, cold)
                results.add("page_warm", target.name, warm)


def start_targets(folder: Path, venv: Path, skip: set[str]) -> list[Target]:
    def env(name: str) -> dict[str, str]:
        return {
            "NBFLASK_DATA_DIR": str(folder / name / "data"),
            "NBFLASK_RUNTIME_DIR": str(folder / name / "runtime"),
        }

    targets = []
    for name, start in (
        (NBFLASK_RUN, lambda path: start_nbflask(path, env=env("run"))),
        (GUNICORN, lambda path: start_gunicorn(path, workers=2, env=env("gunicorn"))),
        (JUPYTER, lambda path: start_jupyter(path, venv)),
    ):
        if name in skip:
            continue
        path = folder / name.replace(" ", "-")
        path.mkdir()
        targets.append(Target(name, start(path), root=path / "notebooks"))
    targets.append(Target(DIRECT, None, DirectKernels(folder / "direct")))
    return targets


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--executions", type=int, default=300, help="sequential round trips per round")
    parser.add_argument("--seconds", type=float, default=10, help="length of each concurrency run")
    parser.add_argument("--megabytes", type=int, default=32, help="MiB of 64 KiB stdout messages")
    parser.add_argument(
        "--quick", action="store_true", help="short rounds while developing (1 round, small runs)"
    )
    parser.add_argument(
        "--skip", default="", help=f"comma-separated: pages, swift, or a server ({GUNICORN}, ...)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the Markdown table")
    args = parser.parse_args()
    skip = {item.strip() for item in args.skip.split(",") if item.strip()}
    plan = Plan(args.rounds, args.executions, args.seconds, args.megabytes, 200, skip)
    if args.quick:
        plan = Plan(1, 50, 3, 8, 50, skip, repeats=1)
    body = json.dumps(
        {"type": "notebook", "format": "json", "content": bench_contents.make_notebook()}
    ).encode()
    venv = jupyter_venv("pages" not in skip)
    results = Results()
    with tempfile.TemporaryDirectory(prefix="nbflask-compare-") as scratch:
        folder = Path(scratch)
        targets = start_targets(folder, venv, skip)
        swift = playwright = browser = None
        try:
            for target in targets:
                if target.server:
                    target.http.get(target.server.url + "api/contents", timeout=30).raise_for_status()
                    time.sleep(1)
                    results.add("mem_idle", target.name, target.memory_mib())
                    results.add("mem_idle_pss", target.name, target.memory_mib(proportional=True))
            for target in targets:
                target.kernels = [target.start_kernel() for _ in range(4)]
            if "swift" not in skip:
                swift = SwiftCount(folder / "swift")
            if "pages" not in skip and (venv / "bin" / "jupyter-lab").exists():
                from playwright.sync_api import sync_playwright
                from ui_tools import CHROMIUM, CHROMIUM_ARGS

                for target in targets:
                    if target.server:
                        model = {"type": "notebook", "content": __import__("bench_pages").make_notebook()}
                        target.http.put(
                            target.server.url + "api/contents/bench.ipynb", json=model, timeout=30
                        ).raise_for_status()
                playwright = sync_playwright().start()
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for number in range(plan.rounds):
                print(f"round {number + 1} of {plan.rounds}", file=sys.stderr)
                measure_round(plan, targets, results, body, browser, swift)
        finally:
            if browser:
                browser.close()
            if playwright:
                playwright.stop()
            if swift:
                swift.stop()
            for target in targets:
                if target.server:
                    target.server.stop()
                if target.direct:
                    target.direct.stop()
    when = datetime.datetime.now(datetime.timezone.utc)
    header = (
        f"## nbflask vs Jupyter Server vs direct ZeroMQ, {when:%Y-%m-%d %H:%M} UTC\n\n"
        f"{plan.rounds} round(s), medians (min-max) of the per-round values; {plan.executions} sequential"
        f" round trips per round, {plan.seconds:g} s concurrency runs, {plan.megabytes} MiB streams,"
        f" {plan.display_count} displays, {plan.repeats} kernel starts and PUT/GET timings per server"
        f" (their median); {os.cpu_count()} cores; load average at the end"
        f" {os.getloadavg()[0]:.1f}; arguments: `{' '.join(sys.argv[1:]) or 'none'}`."
    )
    text = table(results, header)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"compare-{when:%Y%m%d-%H%M}{'-quick' if args.quick else ''}.md"
    path.write_text(text)
    print(text)
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
