"""How long does one client's CPU-heavy request stall everyone else on `nbflask run`?

Under gevent one OS thread serves every client, so a request that parses or serialises a
large body on it freezes them all. While each heavy request below runs, a second client asks
`/api/status` back to back; the table gives that client's longest wait (the stall), its
median, and how long the heavy request itself took. Usage:

    .venv/bin/python benchmarks/loop_stall.py
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_contents import make_notebook  # noqa: E402
from live import own_folders, start_nbflask  # noqa: E402

SHORTCUTS = "@jupyterlab/shortcuts-extension:shortcuts"


def shortcuts_json5(target_bytes: int) -> str:
    """User shortcuts as the Settings Editor keeps them (JSON5, with comments), about
    `target_bytes` long and valid against the plugin's schema."""
    entry = '    // a shortcut\n    {command: "notebook:run-cell", keys: ["Accel K"], selector: "body"},\n'
    count = max(1, (target_bytes - 40) // len(entry))
    return "{\n  shortcuts: [\n" + entry * count + "  ]\n}\n"


class StatusProbe:
    """A client asking /api/status back to back in a thread, recording each wait."""

    def __init__(self, server) -> None:
        self.session = server.session()
        self.url = server.url + "api/status"
        self.samples: list[tuple[float, float]] = []  # (started, seconds)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            self.session.get(self.url, timeout=120).raise_for_status()
            self.samples.append((start, time.monotonic() - start))

    def waits_between(self, start: float, end: float) -> list[float]:
        """Every wait that overlapped [start, end]."""
        return [seconds for began, seconds in self.samples if began <= end and began + seconds >= start]

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def make_folder(path: Path, entries: int = 20_000) -> None:
    path.mkdir()
    for number in range(entries):
        (path / f"{number:05}.txt").touch()


def measure(probe: StatusProbe, action: Callable[[], requests.Response]) -> tuple[float, float, float, int]:
    """(longest wait, median wait, action seconds, action status) of one heavy request."""
    time.sleep(0.3)  # let the probe settle into its rhythm before the heavy request
    start = time.monotonic()
    response = action()
    end = time.monotonic()
    time.sleep(0.3)  # the wait that overlapped the end is finished now
    waits = probe.waits_between(start, end) or [float("nan")]
    return max(waits), statistics.median(waits), end - start, response.status_code


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = own_folders(folder)
        settings_dir = folder / "userdata" / "frontend" / "settings"
        with start_nbflask(folder, env=env) as server:
            session = server.session()
            base = server.url
            notebook = json.dumps({"type": "notebook", "content": make_notebook(4_400_000)}).encode()
            settings_1mb = json.dumps({"raw": shortcuts_json5(1 << 20)}).encode()
            settings_200k = json.dumps({"raw": shortcuts_json5(200 * 1024)}).encode()
            headers = {"Content-Type": "application/json"}
            make_folder(folder / "notebooks" / "many")
            upload = json.dumps({"type": "file", "format": "base64",
                                 "content": base64.b64encode(os.urandom(15 << 20)).decode()}).encode()

            def put_settings(body: bytes) -> Callable[[], requests.Response]:
                return lambda: session.put(base + f"lab/api/settings/{SHORTCUTS}", data=body,
                                           headers=headers, timeout=300)

            def store_settings_file(raw: str) -> None:
                settings_dir.mkdir(parents=True, exist_ok=True)
                (settings_dir / quote(SHORTCUTS, safe="")).write_text(raw, encoding="utf-8")

            def lab_settings() -> requests.Response:
                return session.get(base + "lab/api/settings", timeout=300)

            rows: list[tuple[str, Callable[[], requests.Response]]] = [
                ("idle (1 s)", lambda: (time.sleep(1), session.get(base + "api", timeout=30))[1]),
                ("settings PUT 200 KiB", put_settings(settings_200k)),
                ("lab/api/settings, 200 KiB saved", lab_settings),
                ("lab/api/settings again", lab_settings),
                ("settings PUT 1 MiB", put_settings(settings_1mb)),
                ("lab/api/settings, 1 MiB stored", lambda: (store_settings_file(shortcuts_json5(1 << 20)),
                                                            lab_settings())[1]),
                ("lab/api/settings, 1 MiB again", lab_settings),
                ("notebook PUT 4.5 MB", lambda: session.put(base + "api/contents/big.ipynb", data=notebook,
                                                            headers=headers, timeout=300)),
                ("notebook PUT 4.5 MB again", lambda: session.put(base + "api/contents/big.ipynb",
                                                                  data=notebook, headers=headers,
                                                                  timeout=300)),
                ("notebook GET 4.5 MB", lambda: session.get(base + "api/contents/big.ipynb", timeout=300)),
                ("folder of 20,000 files GET", lambda: session.get(base + "api/contents/many", timeout=300)),
                ("file PUT 20 MB, base64", lambda: session.put(base + "api/contents/big.bin", data=upload,
                                                               headers=headers, timeout=300)),
            ]
            probe = StatusProbe(server)
            results = []
            try:
                for name, action in rows:
                    results.append((name, *measure(probe, action)))
            finally:
                probe.close()
    print(f"{'heavy request':34}{'status':>7}{'its time s':>12}{'stall ms':>10}{'median ms':>11}")
    for name, longest, median, took, status in results:
        print(f"{name:34}{status:>7}{took:12.2f}{longest * 1000:10.1f}{median * 1000:11.1f}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
