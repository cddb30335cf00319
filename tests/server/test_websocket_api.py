"""The websocket transport's contract with its users (the relays), on a real connection: a
socket pair, the server's end accepted as a Werkzeug server would hand it over."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from simple_websocket import ConnectionClosed

from nbflask.websocket import Websocket


@pytest.fixture
def accepted() -> Iterator[tuple[Websocket, socket.socket]]:
    """A server-side websocket, and the client's raw socket (the handshake's reply read)."""
    ours, theirs = socket.socketpair()
    environ = {
        "werkzeug.socket": ours, "PATH_INFO": "/test", "HTTP_HOST": "localhost",
        "HTTP_UPGRADE": "websocket", "HTTP_CONNECTION": "Upgrade", "HTTP_SEC_WEBSOCKET_VERSION": "13",
        "HTTP_SEC_WEBSOCKET_KEY": base64.b64encode(os.urandom(16)).decode(),
    }
    ws = Websocket(environ, subprotocols=[], compression=False, ping_interval=None)
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += theirs.recv(4096)
    assert reply.startswith(b"HTTP/1.1 101")
    try:
        yield ws, theirs
    finally:
        theirs.close()  # the server's reader thread sees the end of the stream and stops


def test_a_reader_waiting_in_receive_returns_once_this_side_closes(accepted):
    """A relay's pump closes the websocket while its reader waits for the client: the reader
    must end at once, not when its own wait runs out."""
    ws, _ = accepted
    ended = threading.Event()
    outcome: list[object] = []

    def read() -> None:
        try:
            outcome.append(ws.receive(timeout=60))
        except ConnectionClosed as exc:
            outcome.append(exc)
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    ws.close(1011, "relay stopped")
    assert ended.wait(30), "the reader still waits after the close"
    assert isinstance(outcome[0], ConnectionClosed)


def test_each_message_s_end_offset_says_when_it_is_written(accepted):
    ws, theirs = accepted
    first = ws.send_message([b"a" * 10])
    second = ws.send_message([b"b" * 200], text=True)
    assert 0 < first < second
    assert second - first == 2 + 2 + 200  # a 2-byte header, a 16-bit length, then the payload
    assert ws.drain(10)
    assert ws.is_written(first) and ws.is_written(second)
    received = b""
    while len(received) < second - first + 12:  # offsets count the handshake's reply too
        received += theirs.recv(4096)
    assert received == b"\x82\x0a" + b"a" * 10 + b"\x81\x7e\x00\xc8" + b"b" * 200


def test_the_transport_and_the_relays_load_no_flask():
    """Only the accepting edge (blueprints/upgrade.py) is Flask's business."""
    code = ("import sys, nbflask.websocket, nbflask.relays.kernel, nbflask.relays.terminal\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'flask', 'werkzeug', 'jinja2'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
