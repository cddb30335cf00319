"""A server killed with SIGKILL in the middle of large saves never leaves a broken notebook.

The real `nbflask run` saves a ~5 MB notebook in a tight loop; we SIGKILL it while a save is
in flight, then check what is on disk: always one complete notebook, the old or a new one.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time

import nbformat
import pytest
import requests
from live import start_nbflask

pytestmark = pytest.mark.slow

ROUNDS = 3
CELLS = 2000


def big_notebook(marker: str) -> dict:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(marker))
    filler = "x = '" + "0123456789" * 250 + "'"
    nb.cells.extend(nbformat.v4.new_code_cell(filler) for _ in range(CELLS - 1))
    return json.loads(nbformat.writes(nb))


def saver(server, bodies: list[bytes], stop: threading.Event, outcome: dict) -> None:
    """Save versions one after another until the server dies under us."""
    session = server.session()
    url = server.url + "api/contents/big.ipynb"
    number = 0
    while not stop.is_set():
        try:
            response = session.put(url, data=bodies[number % len(bodies)], timeout=60,
                                   headers={"Content-Type": "application/json"})
        except requests.ConnectionError:
            outcome["interrupted"] = True
            return
        assert response.status_code in (200, 201), response.text
        outcome["saved"] = outcome.get("saved", 0) + 1
        number += 1


def test_sigkill_during_saves_leaves_old_or_new_notebook(tmp_path):
    root = tmp_path / "notebooks"
    markers = [f"version {i}" for i in range(4)]
    bodies = [
        json.dumps({"type": "notebook", "format": "json", "content": big_notebook(m)}).encode()
        for m in markers
    ]
    assert len(bodies[0]) > 5_000_000
    interrupted = 0
    for round_number in range(ROUNDS):
        server = start_nbflask(tmp_path, {"store": {"root_dir": str(root)}})
        try:
            outcome: dict = {}
            stop = threading.Event()
            thread = threading.Thread(target=saver, args=(server, bodies, stop, outcome))
            thread.start()
            deadline = time.monotonic() + 60
            while not outcome.get("saved") and time.monotonic() < deadline and thread.is_alive():
                time.sleep(0.02)
            assert outcome.get("saved"), server.log()[-2000:]
            time.sleep(random.uniform(0.05, 0.6))  # on purpose: the kill lands at a random point of the saves
            server.stop(signal.SIGKILL)
            stop.set()
            thread.join(60)
            interrupted += bool(outcome.get("interrupted"))
        finally:
            server.stop()
        on_disk = nbformat.reads((root / "big.ipynb").read_text(encoding="utf-8"), as_version=4)
        assert on_disk.cells[0].source in markers, f"round {round_number}: unexpected content"
        assert len(on_disk.cells) == CELLS
    assert interrupted >= 1, "the kill never landed during a save"
    with start_nbflask(tmp_path, {"store": {"root_dir": str(root)}}) as server:
        listing = server.get("api/contents").json()["content"]
        assert [entry["name"] for entry in listing] == ["big.ipynb"], "half-written temp files stay hidden"
        assert server.get("api/contents/big.ipynb").json()["content"]["cells"][0]["source"] in markers
