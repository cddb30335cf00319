"""The contents API through a real `nbflask run`, with raw HTTP so nothing normalises paths."""

from __future__ import annotations

import http.client
import json

import pytest
from live import TOKEN, start_nbflask

pytestmark = pytest.mark.slow

RAW_HOSTILE = [
    "/api/contents/../secret.txt",
    "/api/contents/%2e%2e/secret.txt",
    "/api/contents/..%2fsecret.txt",
    "/api/contents/sub/..%2f..%2fsecret.txt",
    "/api/contents/secret%00.txt",
    "/api/contents/..%5csecret.txt",
    "/files/../secret.txt",
    "/files/%2e%2e/secret.txt",
    "/files/..%2Fsecret.txt",
]


def raw(server, method: str, target: str, body: bytes | None = None, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in {"Authorization": f"token {TOKEN}", **(headers or {})}.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_hostile_raw_paths_never_reach_outside(tmp_path):
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "notebooks" / "sub").mkdir(parents=True)
    with start_nbflask(tmp_path) as server:
        for target in RAW_HOSTILE:
            status, body = raw(server, "GET", target)
            assert status in (400, 404), (target, status, body)
            assert b"top secret" not in body
            text = json.dumps({"type": "file", "format": "text", "content": "pwned"}).encode()
            status, body = raw(server, "PUT", target, text)
            assert status in (400, 404, 405), (target, status, body)
            status, _ = raw(server, "DELETE", target)
            assert status in (400, 404, 405)
    assert (tmp_path / "secret.txt").read_text() == "top secret"
    beside_root = sorted(p.name for p in tmp_path.iterdir())
    assert beside_root == ["nbflask.yaml", "notebooks", "secret.txt", "server.log"]


def test_body_limit_and_if_match_over_http(tmp_path):
    with start_nbflask(tmp_path, {"server": {"max_body_size": 10_000}}) as server:
        session = server.session()
        url = server.url + "api/contents/n.txt"
        first = session.put(url, json={"type": "file", "format": "text", "content": "one"})
        assert first.status_code == 201
        etag = first.headers["ETag"]
        assert session.put(url, json={"type": "file", "format": "text", "content": "two"}).status_code == 200
        stale = session.put(url, json={"type": "file", "format": "text", "content": "lost"},
                            headers={"If-Match": etag})
        assert stale.status_code == 412 and set(stale.json()) == {"message", "reason"}
        too_big = session.put(url, json={"type": "file", "format": "text", "content": "x" * 20_000})
        assert too_big.status_code == 413
        assert "10000 bytes" in too_big.json()["message"]
        assert session.get(url).json()["content"] == "two"


def test_expected_refusals_of_the_store_leave_no_traceback_in_the_log(tmp_path):
    """Under gevent the file store works in a thread pool; a refusal raised there (409, 400)
    used to reach the log as a traceback from gevent's pool."""
    with start_nbflask(tmp_path) as server:
        session = server.session()
        api = server.url + "api/contents/"
        for name in ("a.txt", "b.txt"):
            session.put(api + name, json={"type": "file", "format": "text", "content": name})
        taken = session.patch(api + "a.txt", json={"path": "b.txt"})
        assert taken.status_code == 409 and taken.json()["message"]
        chunk_two = {"type": "file", "format": "base64", "content": "", "chunk": 2}
        orphan = session.put(api + "c.bin", json=chunk_two)
        assert orphan.status_code == 400 and "chunk 1" in orphan.json()["message"]
        assert session.get(api + "missing.txt").status_code == 404
    log = server.log()
    assert "Traceback" not in log and "failed with" not in log, log
