"""The relay under real threads and plain zmq, as `flask --app nbflask run` serves it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
import requests
import websocket
from conftest import TOKEN
from kernelapp import ThreadedServer, close_app
from kernelws import KernelSocket

from nbflask.protocol import zmqlib

pytestmark = pytest.mark.kernel_transports


@pytest.fixture
def served(make_app):
    app = make_app({"kernels": {"ping_interval": 1}})
    server = ThreadedServer(app)
    yield server
    server.stop()
    close_app(app)


AUTH = {"Authorization": f"token {TOKEN}"}


def start_kernel(url: str) -> str:
    response = requests.post(url + "api/kernels", headers=AUTH, timeout=60)
    assert response.status_code == 201
    return response.json()["id"]


def test_threads_use_plain_zmq_and_gevent_green_zmq():
    import zmq

    assert zmqlib.module() is zmq
    patched = subprocess.run([sys.executable, "-c", (
        "from gevent import monkey; monkey.patch_all()\n"
        "import zmq.green\nfrom nbflask.protocol import zmqlib\nassert zmqlib.module() is zmq.green\n"
        "assert isinstance(zmqlib.context(), zmq.green.Context)")], capture_output=True, text=True)
    assert patched.returncode == 0, patched.stderr


def test_activity_and_culling_spare_connected_kernels(make_app):
    app = make_app({"kernels": {"cull_idle_timeout": 2, "cull_interval": 1}})
    server = ThreadedServer(app)
    try:
        lonely, connected = start_kernel(server.url), start_kernel(server.url)
        with KernelSocket(server.url, connected, TOKEN) as ks:
            ks.pending.append(ks.recv())  # attached well within the idle timeout
            before = requests.get(server.url + f"api/kernels/{connected}", headers=AUTH, timeout=30).json()
            ks.execute("import time; time.sleep(0.1)")
            after = requests.get(server.url + f"api/kernels/{connected}", headers=AUTH, timeout=30).json()
            assert after["last_activity"] > before["last_activity"]
            deadline = time.monotonic() + 20
            while requests.get(server.url + f"api/kernels/{lonely}", headers=AUTH, timeout=30).ok:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert ks.execute("print('spared')").stream("stdout") == "spared\n"
    finally:
        server.stop()
        close_app(app)


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


def handshake_extensions(url: str, kernel_id: str) -> tuple[str, bool]:
    """What a browser-like handshake offering permessage-deflate gets: the extensions header,
    and whether the first message relayed from the kernel came compressed (RSV1)."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall((
            f"GET /api/kernels/{kernel_id}/channels?token={TOKEN} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        head, _, frame = head.partition(b"\r\n\r\n")
        while not frame:
            frame = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101")
    lines = head.decode().lower().split("\r\n")
    extensions = " ".join(line for line in lines if line.startswith("sec-websocket-extensions"))
    return extensions, bool(frame[0] & 0x40)


@pytest.mark.parametrize("enabled", [False, True], ids=["default-off", "enabled"])
def test_permessage_deflate_only_when_enabled(make_app, enabled):
    app = make_app({"server": {"websocket_compression": enabled}})
    server = ThreadedServer(app)
    try:
        extensions, compressed = handshake_extensions(server.url, start_kernel(server.url))
        assert ("permessage-deflate" in extensions) is enabled
        assert compressed is enabled
    finally:
        server.stop()
        close_app(app)


def test_cross_origin_websockets_to_a_kernel_are_refused(served):
    kernel_id = start_kernel(served.url)
    url = served.url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels?token={TOKEN}"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=30, origin="http://evil.example")
    assert refused.value.status_code == 403
    same_origin = websocket.create_connection(url, timeout=30, origin=served.url.rstrip("/"))
    same_origin.close()
