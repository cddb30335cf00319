"""HTTP hardening against real servers, through raw sockets and real clients: request
smuggling, bodies, paths, websocket frames, and the login limit across gunicorn workers.

What Jupyter Server 2.21 (Tornado) answers, measured side by side, is what we expect: 400 and
a closed connection for ambiguous body framing, nothing after a websocket closes.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from kernelws import KernelSocket, replies_to
from live import TOKEN, start_gunicorn, start_nbflask
from logins import SEED_HASH
from test_auth_live import browser

from nbflask.frontend.settings import MAX_SETTINGS_BODY

pytestmark = pytest.mark.slow

LIMIT = 256 * 1024
LOGIN = {"password": SEED_HASH, "login_max_failures": 5, "login_window": 600}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("live")
    with start_nbflask(tmp_path, {"server": {"max_body_size": LIMIT}, "auth": LOGIN}) as live:
        yield live


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    with start_gunicorn(tmp_path, {"auth": LOGIN}, workers=3) as live:
        yield live


def exchange(port: int, data: bytes, wait: float = 5.0) -> tuple[bytes, bool]:
    """Send raw bytes; return what came back and whether the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(wait)
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return received, False
        return received, True


def head(port: int, method: str, path: str, extra: str = "") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: token {TOKEN}\r\n"
            f"{extra}\r\n").encode()


SMUGGLED = b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n"


FRAMINGS = [
    "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    "Transfer-Encoding: gzip, chunked\r\n",
    "Transfer-Encoding: bogus\r\n",
    "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
    "Content-Length: 5\r\nContent-Length: 50\r\n",
]


@pytest.mark.parametrize("framing", FRAMINGS)
def test_ambiguous_framing_is_400_and_the_connection_closes(server, framing):
    request = head(server.port, "POST", "/api/contents", framing) + b"0\r\n\r\n" + SMUGGLED
    received, closed = exchange(server.port, request)
    assert received.startswith(b"HTTP/1.1 400"), received[:200]
    assert received.count(b"HTTP/1.1") == 1 and closed  # the smuggled request got no answer
    listing = server.get("api/contents").json()["content"]
    assert [entry["name"] for entry in listing if entry["name"].startswith("untitled")] == []


@pytest.mark.parametrize("framing", FRAMINGS)
def test_gunicorn_never_answers_a_smuggled_request(gunicorn, framing):
    """gunicorn parses HTTP itself: it refuses most of these, and closes after the rest."""
    request = head(gunicorn.port, "POST", "/api/contents", framing) + b"0\r\n\r\n" + SMUGGLED
    received, closed = exchange(gunicorn.port, request)
    assert received.count(b"HTTP/1.1") == 1 and closed, received[:300]


HIDDEN_DELETE = f"DELETE /api/contents/keep.txt HTTP/1.1\r\nHost: x\r\nAuthorization: token {TOKEN}\r\n\r\n"

# Header lines and lengths gevent's parser read leniently: the first lost every header after
# it, so the body (a DELETE) was taken for a second request. gunicorn and nginx answer 400.
BAD_HEADS = {
    "space before the colon": "X-Note : hi\r\nContent-Length: {length}\r\n",
    "tab before the colon": "X-Note\t: hi\r\nContent-Length: {length}\r\n",
    "Content-Length +N": "Content-Length: +{length}\r\n",
    "Content-Length with _": "Content-Length: 0_{length}\r\n",
    "NUL in a value": "X-Note: a\x00b\r\nContent-Length: {length}\r\n",
    "bare LF after a header": "X-Note: hi\nContent-Length: {length}\r\n",
    "folded header": "X-Note: hi\r\n folded\r\nContent-Length: {length}\r\n",
    "no colon": "X-Note hi\r\nContent-Length: {length}\r\n",
}


def keep_file(live) -> None:
    live.session().put(live.url + "api/contents/keep.txt", json={"type": "file", "format": "text",
                                                                 "content": "kept"}, timeout=30)


@pytest.mark.parametrize("live", ["server", "gunicorn"])
@pytest.mark.parametrize("bad", BAD_HEADS.values(), ids=BAD_HEADS.keys())
def test_a_malformed_header_is_400_and_hides_no_request(live, bad, request):
    live = request.getfixturevalue(live)
    keep_file(live)
    body = HIDDEN_DELETE.encode()
    request_bytes = head(live.port, "GET", "/api/status", bad.format(length=len(body))) + body
    received, closed = exchange(live.port, request_bytes)
    assert received.startswith(b"HTTP/1.1 400"), received[:300]
    assert received.count(b"HTTP/1.1 ") == 1 and closed, received[:500]
    assert set(json.loads(received.partition(b"\r\n\r\n")[2])) == {"message", "reason"}
    assert live.get("api/contents/keep.txt").status_code == 200  # the hidden DELETE never ran


BARE_LF = {
    "request line": "GET /api/status HTTP/1.1\nHost: 127.0.0.1\r\nAuthorization: token {token}\r\n\r\n",
    "blank line": "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {token}\r\n\n",
}


@pytest.mark.parametrize("raw", BARE_LF.values(), ids=BARE_LF.keys())
def test_bare_lf_line_ends_are_400_with_a_json_reason(server, raw):
    received, closed = exchange(server.port, raw.format(token=TOKEN).encode())
    assert received.startswith(b"HTTP/1.1 400") and closed, received[:300]
    answer = json.loads(received.partition(b"\r\n\r\n")[2])
    assert set(answer) == {"message", "reason"} and "bare LF" in answer["message"], answer


@pytest.mark.parametrize("live", ["server", "gunicorn"])
def test_a_bad_chunk_size_is_400_and_the_connection_closes(live, request):
    live = request.getfixturevalue(live)
    keep_file(live)
    framing = "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
    request_bytes = head(live.port, "POST", "/api/contents", framing) + b"zz\r\n{}\r\n0\r\n\r\n"
    received, closed = exchange(live.port, request_bytes + HIDDEN_DELETE.encode())
    assert received.startswith(b"HTTP/1.1 400"), received[:300]
    assert received.count(b"HTTP/1.1 ") == 1 and closed, received[:500]
    assert set(json.loads(received.partition(b"\r\n\r\n")[2])) == {"message", "reason"}
    assert live.get("api/contents/keep.txt").status_code == 200
    assert "Traceback" not in live.log()


def test_plain_chunked_bodies_still_work(server):
    body = b'{"type": "directory"}'
    framing = "Transfer-Encoding: chunked\r\nConnection: close\r\n"
    request = head(server.port, "PUT", "/api/contents/made", framing)
    received, closed = exchange(server.port, request + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    assert received.startswith(b"HTTP/1.1 201"), received[:300]
    server.session().delete(server.url + "api/contents/made", timeout=30)


def upgrade(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(head(port, "GET", path, f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"))
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101"), answer[:200]
    return sock


def close_frame() -> bytes:
    mask, payload = os.urandom(4), struct.pack("!H", 1000)
    return bytes([0x88, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("live", ["server", "gunicorn"])
def test_no_http_after_a_websocket_closes(live, request):
    live = request.getfixturevalue(live)
    client = live.session()
    kernel_id = client.post(live.url + "api/kernels", json={}, timeout=60).json()["id"]
    try:
        sock = upgrade(live.port, f"/api/kernels/{kernel_id}/channels")
        sock.sendall(close_frame())
        deadline = time.monotonic() + 10
        received = b""
        while b"\x88" not in received and time.monotonic() < deadline:  # the server's close frame
            received += sock.recv(65536)
        sock.sendall(head(live.port, "GET", "/api/status"))
        after = b""
        try:
            while chunk := sock.recv(65536):
                after += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        sock.close()
        assert b"HTTP/1.1" not in after, after[:200]
    finally:
        client.delete(live.url + f"api/kernels/{kernel_id}", timeout=60)


@pytest.mark.parametrize("path", [b"/api/contents/%ff", b"/api/contents/\xff\xfe", b"/tree/%C3%28"])
def test_a_path_that_is_not_utf8_is_400(server, path):
    request = b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" \
              b"Authorization: token " + TOKEN.encode() + b"\r\n\r\n"
    received, _ = exchange(server.port, request)
    assert received.startswith(b"HTTP/1.1 400"), received[:300]
    assert b"Invalid unicode in path" in received


def chunks(data: bytes, size: int = 500):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_a_chunked_body_over_the_limit_is_413(server):
    client = server.session()
    big = json.dumps({"type": "file", "format": "text", "content": "x" * (2 * LIMIT)}).encode()
    response = client.put(server.url + "api/contents/big.txt", data=chunks(big), timeout=30,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert "server.max_body_size" in response.json()["message"]
    fits = json.dumps({"type": "file", "format": "text", "content": "x" * (LIMIT - 100)}).encode()
    response = client.put(server.url + "api/contents/fits.txt", data=chunks(fits), timeout=30,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert client.get(server.url + "api/contents/fits.txt", timeout=30).json()["size"] == LIMIT - 100


def test_deeply_nested_json_is_400_over_http(server):
    deep = "[" * 100_000 + "]" * 100_000
    body = '{"path": "a", "kernel": ' + deep + "}"
    response = server.session().post(server.url + "api/sessions", data=body,
                                     headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 400 and set(response.json()) == {"message", "reason"}


def test_a_deeply_nested_websocket_frame_is_dropped_and_the_connection_stays(server):
    client = server.session()
    kernel_id = client.post(server.url + "api/kernels", json={}, timeout=60).json()["id"]
    try:
        with KernelSocket(server.url, kernel_id, TOKEN) as ws:
            ws.send_raw('{"channel": "shell", "header": ' + "[" * 100_000 + "]" * 100_000 + "}")
            msg_id = ws.send("shell", "kernel_info_request", {})
            assert ws.wait_for(replies_to(msg_id), timeout=60)["header"]["msg_type"] == "kernel_info_reply"
    finally:
        client.delete(server.url + f"api/kernels/{kernel_id}", timeout=60)
    assert "Traceback" not in server.log()


def parallel_wrong_passwords(live, count: int = 40) -> list[int]:
    session = browser(live)
    session.get(live.url + "login", timeout=30)
    xsrf = session.cookies.get("_xsrf")

    def attempt(_: int) -> int:
        return session.post(live.url + "login", data={"password": "wrong", "_xsrf": xsrf},
                            allow_redirects=False, timeout=60).status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(attempt, range(count)))


@pytest.mark.parametrize("live", ["server", "gunicorn"])
def test_parallel_wrong_passwords_hit_the_limit(live, request):
    live = request.getfixturevalue(live)
    codes = parallel_wrong_passwords(live)
    assert set(codes) == {401, 429}, codes
    assert codes.count(401) <= LOGIN["login_max_failures"], codes
    right = browser(live)
    right.get(live.url + "login", timeout=30)
    form = {"password": "mypassword", "_xsrf": right.cookies.get("_xsrf")}
    blocked = right.post(live.url + "login", data=form, allow_redirects=False, timeout=30)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0


SETTINGS = "/lab/api/settings/@jupyterlab/apputils-extension:themes"


@pytest.mark.parametrize("live", ["server", "gunicorn"])
def test_a_body_nobody_reads_is_not_waited_for(live, request):
    """The body is announced and never sent: the answer comes, then the connection closes
    (gevent waited for the million bytes for ever, gunicorn until its keepalive)."""
    live = request.getfixturevalue(live)
    received, closed = exchange(live.port, b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                           b"Content-Length: 1000000\r\n\r\nabc")
    assert received.startswith(b"HTTP/1.1 200") and closed, received[:300]


@pytest.mark.parametrize("live", ["server", "gunicorn"])
@pytest.mark.parametrize("expect", ["", "Expect: 100-continue\r\n"], ids=["plain", "100-continue"])
def test_a_413_closes_the_connection_without_reading_the_body(live, expect, request):
    live = request.getfixturevalue(live)
    framing = f"Content-Type: application/json\r\nContent-Length: 1000000000\r\n{expect}"
    received, closed = exchange(live.port, head(live.port, "PUT", SETTINGS, framing) + b'{"raw": "')
    received = received.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")  # gunicorn's, at once
    assert received.startswith(b"HTTP/1.1 413") and closed, received[:300]
    assert set(json.loads(received.partition(b"\r\n\r\n")[2])) == {"message", "reason"}


@pytest.mark.parametrize("live", ["server", "gunicorn"])
def test_a_chunked_body_over_a_views_limit_is_read_no_further(live, request):
    """A chunk announces 16 MiB; more than the settings limit of it comes, the rest never: the
    413 answers what came (the whole body was awaited before; nbflask run's fixture refuses
    it by server.max_body_size, below the view's limit)."""
    live = request.getfixturevalue(live)
    framing = "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    sent = b"%x\r\n" % (16 * 1024 * 1024) + b'{"raw": "' + b"x" * (MAX_SETTINGS_BODY + 1)
    received, closed = exchange(live.port, head(live.port, "PUT", SETTINGS, framing) + sent)
    assert received.startswith(b"HTTP/1.1 413") and closed, received[:300]
    assert set(json.loads(received.partition(b"\r\n\r\n")[2])) == {"message", "reason"}


@pytest.mark.parametrize("live", ["server", "gunicorn"])
def test_a_body_read_to_its_end_keeps_the_connection(live, request):
    """Only a body left unread closes the connection: two uploads, by length and chunked,
    pipelined on one connection, are both answered."""
    live = request.getfixturevalue(live)
    body = json.dumps({"type": "file", "format": "text", "content": "x" * 100_000}).encode()
    by_length = head(live.port, "PUT", "/api/contents/kept1.txt",
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n") + body
    chunked = head(live.port, "PUT", "/api/contents/kept2.txt",
                   "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n")
    received, closed = exchange(live.port, by_length + chunked + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    assert received.count(b"HTTP/1.1 201") == 2 and closed, received[:500]


# Chunked bodies gunicorn cannot parse, sent to a view that refuses the request unread (403):
# gunicorn logged "Socket error processing request." and two tracebacks for each.
UNREAD_BAD_CHUNKS = {
    "zz": b"zz\r\n{}\r\n0\r\n\r\n",
    "0x5": b"0x5\r\nhello\r\n0\r\n\r\n",
    "-5": b"-5\r\nhello\r\n0\r\n\r\n",
    "5 space": b"5 \r\nhello\r\n0\r\n\r\n",
    "0_5": b"0_5\r\nhello\r\n0\r\n\r\n",
    "no CRLF after the data": b"5\r\nhelloXX0\r\n\r\n",
}


@pytest.mark.parametrize("live", ["server", "gunicorn"])
@pytest.mark.parametrize("body", UNREAD_BAD_CHUNKS.values(), ids=UNREAD_BAD_CHUNKS.keys())
def test_a_bad_chunked_body_nobody_reads_logs_no_traceback(live, body, request):
    live = request.getfixturevalue(live)
    received, closed = exchange(live.port, b"POST /api/contents/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                           b"Transfer-Encoding: chunked\r\n\r\n" + body + SMUGGLED)
    assert received.count(b"HTTP/1.1 ") == 1 and closed, received[:500]
    log = live.log()
    assert "Traceback" not in log and "Socket error" not in log, log[-3000:]


# A bare LF inside a chunk line or a trailer: a proxy ending lines at LF would read the body
# differently (gevent took `5;a\nb` as the size line of `hello`).
BARE_LF_CHUNKS = {
    "in an extension": b"5;a\nb\r\nhello\r\n0\r\n\r\n",
    "in a trailer": b"5\r\nhello\r\n0\r\nX: a\nb\r\n\r\n",
    "control byte in an extension": b"5;a\x00b\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("live", ["server", "gunicorn"])
@pytest.mark.parametrize("body", BARE_LF_CHUNKS.values(), ids=BARE_LF_CHUNKS.keys())
def test_a_bare_lf_in_chunk_lines_or_trailers_is_400(live, body, request):
    live = request.getfixturevalue(live)
    framing = "Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n"
    request_bytes = head(live.port, "POST", "/api/contents/x.bin", framing) + body + SMUGGLED
    received, closed = exchange(live.port, request_bytes)
    assert received.startswith(b"HTTP/1.1 400"), received[:300]
    assert received.count(b"HTTP/1.1 ") == 1 and closed, received[:500]


def test_a_head_over_64_kib_is_431_and_99_header_lines_are_the_limit(server):
    big = "".join(f"X-Big-{n}: {'y' * 33000}\r\n" for n in range(2))
    received, closed = exchange(server.port, head(server.port, "GET", "/api/status", big))
    assert received.startswith(b"HTTP/1.1 431") and closed, received[:300]
    assert set(json.loads(received.partition(b"\r\n\r\n")[2])) == {"message", "reason"}
    # head() sends Host and Authorization: 97 more make 99, gevent's own limit.
    ninety_nine = head(server.port, "GET", "/api/status", header_lines(96, "Connection: close"))
    received, _ = exchange(server.port, ninety_nine)
    assert received.startswith(b"HTTP/1.1 200"), received[:300]
    received, closed = exchange(server.port, head(server.port, "GET", "/api/status", header_lines(98)))
    assert received.startswith(b"HTTP/1.1 400") and closed, received[:300]
    assert "more than 99 header lines" in json.loads(received.partition(b"\r\n\r\n")[2])["message"]


def header_lines(count: int, *more: str) -> str:
    return "".join(f"X-Line-{n}: y\r\n" for n in range(count)) + "".join(f"{line}\r\n" for line in more)


# Request lines gunicorn refuses and gevent read: tabs, runs of spaces, a NUL in the target,
# HTTP/0.9's two words, chunked in HTTP/1.0.
BAD_REQUEST_LINES = {
    "tab": b"GET\t/api/status HTTP/1.1\r\n",
    "two spaces": b"GET  /api/status HTTP/1.1\r\n",
    "NUL in the target": b"GET /api/status\x00x HTTP/1.1\r\n",
    "control byte in the target": b"GET /api/status\x01 HTTP/1.1\r\n",
    "HTTP/0.9": b"GET /api/status\r\n",
}


@pytest.mark.parametrize("live", ["server", "gunicorn"])
@pytest.mark.parametrize("line", BAD_REQUEST_LINES.values(), ids=BAD_REQUEST_LINES.keys())
def test_a_malformed_request_line_is_400_json(live, line, request):
    live = request.getfixturevalue(live)
    rest = f"Host: 127.0.0.1\r\nAuthorization: token {TOKEN}\r\n\r\n".encode()
    received, closed = exchange(live.port, line + rest)
    assert received.startswith(b"HTTP/1.1 400") and closed, received[:300]
    assert set(json.loads(received.partition(b"\r\n\r\n")[2])) == {"message", "reason"}


@pytest.mark.parametrize("live", ["server", "gunicorn"])
def test_chunked_in_http_1_0_is_400_json(live, request):
    live = request.getfixturevalue(live)
    request_bytes = (b"POST /api/contents HTTP/1.0\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                     + f"Authorization: token {TOKEN}\r\n\r\n".encode() + b"0\r\n\r\n" + SMUGGLED)
    received, closed = exchange(live.port, request_bytes)
    assert received.startswith(b"HTTP/1.1 400") and closed, received[:300]
    assert received.count(b"HTTP/1.1 ") == 1
    assert set(json.loads(received.partition(b"\r\n\r\n")[2])) == {"message", "reason"}


@pytest.mark.parametrize("live", ["server", "gunicorn"])
def test_one_empty_line_before_a_request_is_skipped(live, request):
    live = request.getfixturevalue(live)
    request_bytes = b"\r\n" + head(live.port, "GET", "/api/status", "Connection: close\r\n")
    received, _ = exchange(live.port, request_bytes)
    assert received.startswith(b"HTTP/1.1 200"), received[:300]


def test_a_request_line_too_long_is_414_json(server):
    received, closed = exchange(server.port, head(server.port, "GET", "/api/" + "a" * 9000))
    assert received.startswith(b"HTTP/1.1 414") and closed, received[:300]
    assert set(json.loads(received.partition(b"\r\n\r\n")[2])) == {"message", "reason"}
