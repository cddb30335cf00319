"""The relay under real threads and plain zmq, as `flask --app nbflask run` serves it."""

from __future__ import annotations

import pytest
import requests
import websocket
from conftest import TOKEN
from kernelapp import ThreadedServer, close_app
from kernelws import KernelSocket

from nbflask.kernels import zmqlib


@pytest.fixture
def served(make_app):
    app = make_app({"kernels": {"ping_interval": 1}})
    server = ThreadedServer(app)
    yield server
    server.stop()
    close_app(app)


def start_kernel(url: str) -> str:
    response = requests.post(url + "api/kernels", headers={"Authorization": f"token {TOKEN}"}, timeout=60)
    assert response.status_code == 201
    return response.json()["id"]


def test_threads_use_plain_zmq():
    import zmq

    assert zmqlib.module() is zmq


@pytest.mark.parametrize("v1", [False, True], ids=["legacy", "v1"])
def test_execute_and_input_over_threads(served, v1):
    kernel_id = start_kernel(served.url)
    with KernelSocket(served.url, kernel_id, TOKEN, v1=v1) as ks:
        assert ks.execute("print(2 ** 10)").stream("stdout") == "1024\n"
        assert ks.execute("print(input() * 2)", stdin="ab").stream("stdout") == "abab\n"


def test_server_pings_keep_an_idle_connection_alive(served):
    kernel_id = start_kernel(served.url)
    with KernelSocket(served.url, kernel_id, TOKEN) as ks:
        pings = 0
        while pings < 3:
            opcode, _ = ks.ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_PING:
                pings += 1  # websocket-client answers each with a pong
        assert ks.execute("print('awake')").stream("stdout") == "awake\n"
