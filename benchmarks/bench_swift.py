"""PUT and GET of a 5 MB, 2,000-cell notebook through the API: Swift store vs file store.

Both run side by side in one run, on the same machine and load: a real `nbflask run` (gevent)
on the file store and another on a real single-node Swift (tests/support/swift/start-swift.sh), each
saving and loading the same notebook over HTTP as a Jupyter client does. Prints medians and
the Swift/file ratio; the ratio is the number to read, since absolute times depend on load.

    .venv/bin/python benchmarks/bench_swift.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nbformat

TESTS = Path(__file__).resolve().parent.parent / "tests" / "support"
sys.path.insert(0, str(TESTS))

from live import LiveServer, start_nbflask  # noqa: E402
from swift_fixtures import SwiftServer  # noqa: E402

CELLS = 2000
TARGET_BYTES = 5 * 1000 * 1000


def big_notebook() -> dict:
    """2,000 code cells with text outputs, about 5 MB once saved."""
    nb = nbformat.v4.new_notebook()
    per_cell = TARGET_BYTES // CELLS
    for i in range(CELLS):
        cell = nbformat.v4.new_code_cell(f"x{i} = {i} ** 2\nprint(x{i})")
        text = (f"line {i}: " + "0123456789" * 10 + "\n") * (per_cell // 120)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        nb.cells.append(cell)
    return json.loads(nbformat.writes(nb))


def timed(action: Callable[[], None], rounds: int) -> list[float]:
    action()  # warm up: connections, token, container
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def measure(server: LiveServer, body: bytes, rounds: int) -> dict[str, list[float]]:
    session = server.session()
    url = server.url + "api/contents/big.ipynb"
    headers = {"Content-Type": "application/json"}

    def put() -> None:
        response = session.put(url, data=body, headers=headers, timeout=120)
        assert response.status_code in (200, 201), response.text[:500]

    def get() -> None:
        response = session.get(url, timeout=120)
        assert response.status_code == 200, response.text[:500]
        assert len(response.json()["content"]["cells"]) == CELLS

    return {"PUT": timed(put, rounds), "GET": timed(get, rounds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    model = {"type": "notebook", "format": "json", "content": big_notebook()}
    body = json.dumps(model).encode()
    saved_size = len(nbformat.writes(nbformat.from_dict(model["content"])).encode())
    print(f"notebook: {CELLS} cells, {saved_size / 1e6:.2f} MB saved, {len(body) / 1e6:.2f} MB request body")

    with tempfile.TemporaryDirectory(prefix="bench-swift-") as scratch:
        root = Path(scratch)
        (root / "swift-server").mkdir()
        swift = SwiftServer(root / "swift-server")
        swift.start()
        try:
            results = {}
            for name, store in (
                ("file", {}),
                ("swift", {"class": "swift", **swift.options("bench"), "timeout": 30}),
            ):
                folder = root / name
                folder.mkdir()
                with start_nbflask(folder, {"store": store} if store else None) as server:
                    try:
                        results[name] = measure(server, body, rounds)
                    except Exception:
                        print(f"{name} store failed; its server log ends with:\n{server.log()[-3000:]}")
                        raise
        finally:
            swift.stop()

    print(f"medians of {rounds} rounds, each after one warm-up (real `nbflask run`, gevent, loopback)")
    print(f"{'':4} {'file store':>12} {'swift store':>12} {'swift/file':>11}")
    for op in ("PUT", "GET"):
        file_ms = statistics.median(results["file"][op]) * 1000
        swift_ms = statistics.median(results["swift"][op]) * 1000
        print(f"{op:4} {file_ms:10.1f}ms {swift_ms:10.1f}ms {swift_ms / file_ms:10.2f}x")


if __name__ == "__main__":
    main()
