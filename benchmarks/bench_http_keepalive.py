"""Keep-alive HTTP latency of `nbflask run`, side by side with a new connection per request.

A keep-alive client should never be slower than one that reconnects each time; before
TCP_NODELAY was set on accepted sockets it was 25x slower (44 ms vs 2 ms per request) because
of Nagle's algorithm meeting delayed ACKs.

    python benchmarks/bench_http_keepalive.py [--requests 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
from live import TOKEN, start_nbflask  # noqa: E402


def timed(get, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        response = get()
        samples.append(time.perf_counter() - start)
        response.raise_for_status()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    headers = {"Authorization": f"token {TOKEN}"}
    with tempfile.TemporaryDirectory() as folder, start_nbflask(Path(folder)) as server:
        url = server.url + "api/status"
        session = requests.Session()
        session.trust_env = False
        session.headers.update(headers)
        session.get(url)
        kept = timed(lambda: session.get(url), args.requests)
        fresh = timed(lambda: requests.get(url, headers=headers, timeout=10), args.requests)
    print(f"{'client':<28}{'median ms':>10}{'p95 ms':>10}")
    for name, samples in (("keep-alive session", kept), ("new connection each time", fresh)):
        p95 = sorted(samples)[int(0.95 * len(samples))]
        print(f"{name:<28}{statistics.median(samples) * 1e3:>10.2f}{p95 * 1e3:>10.2f}")
    print(f"ratio keep-alive / new connection: {statistics.median(kept) / statistics.median(fresh):.2f}")


if __name__ == "__main__":
    main()
