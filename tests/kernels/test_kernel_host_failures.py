"""The kernel host starting under load, dying, and being replaced, against a live server."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kernelapp import wait_gone
from kernelws import KernelSocket
from live import start_gunicorn, start_nbflask

pytestmark = [pytest.mark.slow, pytest.mark.kernel_transports]


def runtime_dir() -> Path:
    return Path(os.environ["NBFLASK_RUNTIME_DIR"])


def host_pids() -> set[int]:
    pids = set()
    for path in runtime_dir().glob("kernel-host-*.json"):
        try:
            pids.add(int(json.loads(path.read_text())["pid"]))
        except (OSError, ValueError, KeyError):
            pass
    return pids


def wait_for_host(old: set[int] = frozenset(), timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = host_pids() - set(old)
        if fresh:
            return fresh.pop()
        time.sleep(0.1)
    raise AssertionError("no kernel host appeared")


def concurrent_requests(server, count: int = 10) -> list[int]:
    """`count` kernel and session requests at once, as JupyterLab makes them at start."""
    def one(n: int) -> int:
        client = server.session()
        path = "api/kernels" if n % 2 else "api/sessions"
        return client.get(server.url + path, timeout=60).status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.parametrize("start", [start_nbflask, start_gunicorn], ids=["nbflask-run", "gunicorn"])
def test_concurrent_first_requests_and_a_killed_host_never_freeze_the_server(tmp_path, start):
    with start(tmp_path) as server:
        assert concurrent_requests(server) == [200] * 10
        assert server.get("api/status").status_code == 200
        first = wait_for_host()
        os.kill(first, signal.SIGKILL)
        assert wait_gone(first)
        assert concurrent_requests(server) == [200] * 10
        second = wait_for_host({first})
        assert second != first
        started = server.session().post(server.url + "api/kernels", json={}, timeout=90)
        assert started.status_code == 201, started.text


def test_host_death_is_told_to_websockets_and_rest_and_cleaned_up(tmp_path):
    with start_nbflask(tmp_path) as server:
        client = server.session()
        kernel = client.post(server.url + "api/kernels", json={}, timeout=90).json()
        connection_file = runtime_dir() / f"kernel-{kernel['id']}.json"
        assert connection_file.exists()
        host = wait_for_host()
        with KernelSocket(server.url, kernel["id"], server.token) as ws:
            assert ws.execute("print(6 * 7)").stream("stdout") == "42\n"
            os.kill(host, signal.SIGKILL)
            dead = ws.wait_for(lambda m: m["header"]["msg_type"] == "status"
                               and m["content"]["execution_state"] == "dead", timeout=20)
            assert f"kernel host (pid {host}) died" in dead["content"]["reason"]
            with pytest.raises(ConnectionError, match="kernel host died"):
                ws.recv(timeout=20)

        gone = client.get(server.url + f"api/kernels/{kernel['id']}", timeout=60)
        assert gone.status_code == 404
        assert f"lost when its kernel host (pid {host}) died" in gone.json()["message"]
        assert client.get(server.url + "api/kernels", timeout=60).json() == []
        assert not connection_file.exists()
        assert wait_for_host({host}) != host

        fresh = client.post(server.url + "api/kernels", json={}, timeout=90).json()
        with KernelSocket(server.url, fresh["id"], server.token) as ws:
            assert ws.execute("print('again')").stream("stdout") == "again\n"


def test_a_websocket_opened_just_before_the_host_dies_is_told_dead_too(tmp_path):
    """The host is killed as soon as the websocket is open, while its relay is still
    subscribing, attaching and confirming iopub: it gets the `dead` status, then the close."""
    with start_nbflask(tmp_path) as server:
        kernel = server.session().post(server.url + "api/kernels", json={}, timeout=90).json()
        host = wait_for_host()
        with KernelSocket(server.url, kernel["id"], server.token) as ws:
            os.kill(host, signal.SIGKILL)
            dead = ws.wait_for(lambda m: m["header"]["msg_type"] == "status"
                               and m["content"]["execution_state"] == "dead", timeout=20)
            assert f"kernel host (pid {host}) died" in dead["content"]["reason"]
            with pytest.raises(ConnectionError, match="kernel host died"):
                while True:
                    ws.recv(timeout=20)
