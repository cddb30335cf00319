"""Stores under gevent, as `nbflask run` and gunicorn's gevent worker use them.

Runs in a subprocess because gevent must patch the standard library before anything else.
Greenlets race compare-and-swap writes (exactly one may win) and plain writes (the last
complete version survives) on the file store (whose writes run on gevent's thread pool)
and on the memory store.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import sys, gevent
    from nbflask.stores.base import Conflict
    from nbflask.stores.file import FileStore
    from nbflask.stores.memory import MemoryStore

    for store in (FileStore(root_dir=sys.argv[1]), MemoryStore()):
        base = store.write("cas.bin", b"base").etag
        outcomes = []

        def attempt(i):
            try:
                store.write("cas.bin", b"writer %d" % i + b"x" * 1_000_000, if_match=base)
                outcomes.append("won")
            except Conflict:
                outcomes.append("conflict")

        gevent.joinall([gevent.spawn(attempt, i) for i in range(10)], raise_error=True)
        assert sorted(outcomes) == ["conflict"] * 9 + ["won"], outcomes
        payloads = [bytes([i]) * 500_000 for i in range(10)]
        gevent.joinall([gevent.spawn(store.write, "plain.bin", p) for p in payloads], raise_error=True)
        assert store.read("plain.bin") in payloads
        print(store.name, "ok")
    """
)


def test_stores_under_gevent_greenlets(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["file ok", "memory ok"]


COPY_SCRIPT = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import os, sys
    from nbflask.stores.file import FileStore

    real_thread = monkey.get_original("threading", "get_ident")
    store = FileStore(root_dir=sys.argv[1])
    store.mkdir("d")
    store.write("d/a.txt", b"a")
    threads = []

    def keep(entry):
        threads.append(real_thread())
        return True

    store.copy("d", "d-Copy1", keep=keep)
    assert store.read("d-Copy1/a.txt") == b"a"
    print("walked on the loop's thread" if real_thread() in threads else "walked off the loop")
    """
)


def test_the_file_store_walks_a_copied_folder_off_the_gevent_loop(tmp_path):
    """A folder's copy reads and fsyncs every file: on the loop's thread it held every other
    client (a copy that recursed for 10 s held /api/status 10.85 s)."""
    result = subprocess.run(
        [sys.executable, "-c", COPY_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "walked off the loop"
