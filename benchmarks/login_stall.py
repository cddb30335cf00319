"""How much do argon2 logins slow other requests on one `nbflask run` server?

Measures `/api/status` latency while idle and while another client logs in repeatedly with
an argon2 password, side by side in one run. Usage: `python benchmarks/login_stall.py`.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
from live import start_nbflask  # noqa: E402

from nbflask.passwords import hash_password  # noqa: E402


def latencies(server, seconds: float) -> list[float]:
    session = server.session()
    found = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.perf_counter()
        session.get(server.url + "api/status", timeout=30).raise_for_status()
        found.append(time.perf_counter() - start)
    return found


def keep_logging_in(server, stop: threading.Event, count: list[int]) -> None:
    session = requests.Session()
    session.trust_env = False
    while not stop.is_set():
        session.get(server.url + "login", timeout=30)
        data = {"password": "benchmark", "_xsrf": session.cookies.get("_xsrf")}
        session.post(server.url + "login", data=data, allow_redirects=False, timeout=30)
        session.cookies.clear()
        count[0] += 1


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NBFLASK_RUNTIME_DIR"] = tmp + "/runtime"
        config = {"auth": {"password": hash_password("benchmark"), "login_max_failures": 1000}}
        with start_nbflask(Path(tmp), config) as server:
            idle = latencies(server, 3)
            stop, logins = threading.Event(), [0]
            worker = threading.Thread(target=keep_logging_in, args=(server, stop, logins))
            worker.start()
            busy = latencies(server, 3)
            stop.set()
            worker.join()
    print(f"{'':24}{'idle':>10}{'logging in':>12}{'ratio':>8}")
    def p99(values: list[float]) -> float:
        return sorted(values)[int(len(values) * 0.99)]

    for name, func in (("median ms", statistics.median), ("p99 ms", p99), ("max ms", max)):
        a, b = func(idle) * 1000, func(busy) * 1000
        print(f"{name:24}{a:10.2f}{b:12.2f}{b / a:8.1f}")
    print(f"logins during the busy phase: {logins[0]}")


if __name__ == "__main__":
    main()
