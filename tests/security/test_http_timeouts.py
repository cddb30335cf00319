"""Slow clients against real servers over TLS: a stalled handshake, a half-sent request, an
idle kept-alive connection and a body that stopped coming are closed once their
`server.*_timeout` runs out, under `nbflask run` and gunicorn alike; a websocket, or an upload
that is slower than every other timeout but keeps coming, is not.

Each test waits for the server's close itself (recv returns b'' or the TLS socket errors);
the sockets' own timeout is only a safety net that fails the test. What must outlast the
timeouts is paced by a canary: a connection opened afterwards that the server closes as
idle, so its close proves a timeout has run out meanwhile.
"""

from __future__ import annotations

import socket
import ssl

import pytest
from kernelws import KernelSocket, replies_to
from live import TOKEN, start_gunicorn, start_nbflask

pytestmark = pytest.mark.slow

# body_timeout is above the pace of the trickled upload (one idle_close, about keepalive_timeout).
TIMEOUTS = {"handshake_timeout": 1, "header_timeout": 1, "keepalive_timeout": 2, "body_timeout": 5}
SAFETY = 30  # seconds: a server that never closes fails the test here


@pytest.fixture(scope="module", params=["nbflask", "gunicorn"])
def live(request, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp(request.param)
    if request.param == "nbflask":
        server = start_nbflask(tmp_path, {"server": TIMEOUTS}, tls=True)
    else:
        server = start_gunicorn(tmp_path, {"server": TIMEOUTS}, tls=True, workers=1)
    with server:
        yield server


def tcp(live) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", live.port))
    sock.settimeout(SAFETY)
    return sock


def tls(live) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(live.cert))
    return context.wrap_socket(tcp(live), server_hostname="127.0.0.1")


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ssl.SSLError, ConnectionResetError):
        pass  # a TLS connection closed without close_notify: closed all the same
    return received


def head(live, method: str, path: str, extra: str = "") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nAuthorization: token {TOKEN}\r\n"
            f"{extra}\r\n").encode()


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    header, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in header.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return header + b"\r\n\r\n" + body


def idle_close(live) -> None:
    """Open a connection, make one request, and return once the server closes it as idle."""
    with tls(live) as canary:
        canary.sendall(head(live, "GET", "/api"))
        assert read_response(canary).startswith(b"HTTP/1.1 200")
        assert until_closed(canary) == b""


def test_a_stalled_tls_handshake_is_closed(live):
    with tcp(live) as sock:
        assert until_closed(sock) == b""  # no ClientHello ever came
    with tcp(live) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello
        assert until_closed(sock) == b""


def test_a_half_sent_request_is_closed(live):
    with tls(live) as sock:
        assert until_closed(sock) == b""  # connected, never a byte of a request
    with tls(live) as sock:
        sock.sendall(f"PUT /api/contents/x.txt HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\n".encode())
        assert until_closed(sock) == b""
    assert live.session().get(live.url + "api/contents/x.txt", timeout=30).status_code == 404


def test_an_idle_kept_alive_connection_is_closed(live):
    with tls(live) as sock:
        sock.sendall(head(live, "GET", "/api/status"))
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(head(live, "GET", "/api/status"))  # kept alive while it is used
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        assert until_closed(sock) == b""


def test_an_idle_websocket_outlives_the_timeouts(live):
    client = live.session()
    kernel_id = client.post(live.url + "api/kernels", json={}, timeout=60).json()["id"]
    try:
        with KernelSocket(live.url, kernel_id, TOKEN, cert=str(live.cert)) as ws:
            idle_close(live)
            idle_close(live)
            msg_id = ws.send("shell", "kernel_info_request", {})
            assert ws.wait_for(replies_to(msg_id), timeout=60)["header"]["msg_type"] == "kernel_info_reply"
    finally:
        client.delete(live.url + f"api/kernels/{kernel_id}", timeout=60)


def test_an_upload_that_trickles_is_not_cut(live):
    body = b'{"type": "file", "format": "text", "content": "' + b"x" * 300 + b'"}'
    pieces = [body[:100], body[100:200], body[200:]]
    with tls(live) as sock:
        sock.sendall(head(live, "PUT", "/api/contents/slow.txt",
                          f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"))
        for piece in pieces:
            idle_close(live)  # longer than every timeout but body_timeout since the last bytes
            sock.sendall(piece)
        assert read_response(sock).startswith(b"HTTP/1.1 201"), "the upload was cut"
    saved = live.session().get(live.url + "api/contents/slow.txt", timeout=30).json()
    assert saved["content"] == "x" * 300


def test_a_body_that_stops_coming_is_closed(live):
    """Part of an authenticated upload, then nothing: the connection ends after body_timeout
    (it stayed open for ever under both servers), and nothing is saved."""
    body_start = b'{"type": "file", "format": "text", '
    with tls(live) as sock:
        sock.sendall(head(live, "PUT", "/api/contents/stalled.txt",
                          "Content-Type: application/json\r\nContent-Length: 300\r\n") + body_start)
        answer = until_closed(sock)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert live.session().get(live.url + "api/contents/stalled.txt", timeout=30).status_code == 404
    assert "Traceback" not in live.log()


@pytest.mark.parametrize("command", ["nbflask", "gunicorn"])
def test_a_stopping_server_closes_idle_kept_alive_connections_at_once(tmp_path, command):
    """A browser keeps its connections open between requests; a server told to stop (or a
    gunicorn worker reloaded or recycled) closes the idle ones, instead of letting them hold
    it until their keep-alive timeout (here longer than SAFETY) or gunicorn's graceful one."""
    patient = {"server": {"header_timeout": 600, "keepalive_timeout": 600}}
    if command == "nbflask":
        server = start_nbflask(tmp_path, patient, tls=True)
    else:
        server = start_gunicorn(tmp_path, patient, tls=True, workers=1)
    with server, tls(server) as sock:
        sock.sendall(head(server, "GET", "/api/status"))
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        server.proc.terminate()
        assert until_closed(sock) == b""
        assert server.proc.wait(SAFETY) == 0
    for error in ("Traceback", "Socket error", "Error handling request"):
        assert error not in server.log()
