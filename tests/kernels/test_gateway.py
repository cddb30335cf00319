"""Jupyter Server's own gateway client in front of nbflask: a real client no one here wrote.

Jupyter Server (in its own scratch venv, tests/support/gateway/install-jupyter-server.sh; never our
dependency) runs with `--gateway-url` pointing at nbflask under gunicorn, so every kernel and
websocket it serves is nbflask's. The test client speaks to Jupyter Server only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from kernelws import KernelSocket
from live import TOKEN, free_port, start_gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.kernel_transports]

INSTALL = Path(__file__).parent.parent / "support" / "gateway" / "install-jupyter-server.sh"
JS_TOKEN = "jupyter-server-token"
COUNT_SLOWLY = "import time\nfor i in range(10):\n    print(f'line {i}', flush=True)\n    time.sleep(0.5)"


@pytest.fixture(scope="session")
def jupyter_server_bin() -> Path:
    venv = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True, check=True, timeout=600)
    return Path(venv.stdout.strip()) / "bin" / "jupyter-server"


class Gateway:
    def __init__(self, process: subprocess.Popen, url: str) -> None:
        self.process, self.url = process, url

    def post(self, path: str, body: dict) -> dict:
        response = requests.post(self.url + path, json=body, timeout=120,
                                 headers={"Authorization": f"token {JS_TOKEN}"})
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def nbflask_and_gateway(tmp_path, jupyter_server_bin) -> Iterator[tuple]:
    with start_gunicorn(tmp_path, workers=2) as server:
        port = free_port()
        jupyter = tmp_path / "jupyter"
        env = {**os.environ, **{f"JUPYTER_{kind}_DIR": str(jupyter / kind.lower())
                                for kind in ("CONFIG", "DATA", "RUNTIME")}}
        process = subprocess.Popen(
            [str(jupyter_server_bin), f"--port={port}", "--ip=127.0.0.1", "--no-browser", "--allow-root",
             f"--ServerApp.token={JS_TOKEN}", f"--ServerApp.root_dir={tmp_path}",
             f"--gateway-url={server.url}", f"--GatewayClient.auth_token={TOKEN}",
             "--GatewayClient.gateway_retry_interval=0.5"],
            env=env, stdin=subprocess.DEVNULL, stdout=open(tmp_path / "jupyter-server.log", "wb"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        gateway = Gateway(process, f"http://127.0.0.1:{port}/")
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if requests.get(gateway.url + "api", timeout=2).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.2)
            else:
                raise RuntimeError((tmp_path / "jupyter-server.log").read_text()[-3000:])
            yield server, gateway
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(15)


def web_workers(server) -> list[psutil.Process]:
    master = psutil.Process(server.proc.pid)
    return [child for child in master.children() if "gunicorn" in " ".join(child.cmdline())]


def test_the_first_cell_of_each_new_kernel_shows_its_output(nbflask_and_gateway):
    _, gateway = nbflask_and_gateway
    for n in range(3):
        session = gateway.post("api/sessions", {"path": f"first-{n}.ipynb", "type": "notebook",
                                                "name": "", "kernel": {"name": "python3"}})
        with KernelSocket(gateway.url, session["kernel"]["id"], JS_TOKEN) as ws:
            assert ws.execute(f"print('first cell {n}')").stream("stdout") == f"first cell {n}\n"


def test_killing_every_web_worker_mid_cell_loses_no_output(nbflask_and_gateway):
    """The gateway reconnects with the same session_id to a new worker; replay fills the gap."""
    server, gateway = nbflask_and_gateway
    kernel = gateway.post("api/kernels", {"name": "python3"})
    with KernelSocket(gateway.url, kernel["id"], JS_TOKEN, session_id=uuid.uuid4().hex) as ws:
        msg_id = ws.send("shell", "execute_request", {"code": COUNT_SLOWLY, "silent": False})
        ws.wait_for(lambda m: m["header"]["msg_type"] == "stream"
                                and m["parent_header"].get("msg_id") == msg_id)
        old = web_workers(server)
        for worker in old:
            worker.send_signal(signal.SIGKILL)
        text = "line 0\n"
        while not text.endswith("line 9\n"):
            message = ws.wait_for(lambda m: m["header"]["msg_type"] == "stream"
                                  and m["parent_header"].get("msg_id") == msg_id, timeout=30)
            text += message["content"]["text"]
        assert text == "".join(f"line {i}\n" for i in range(10))
        assert not {w.pid for w in old} & {w.pid for w in web_workers(server)}
