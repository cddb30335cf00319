"""Auth and security against real `nbflask run` servers: real HTTP, real TLS, real websockets."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests
import websocket
from live import BIN, TOKEN, session_cookie_name, start_nbflask, write_config
from logins import SEED_HASH
from test_auth import assert_rejected, guarded_requests

import nbflask
from nbflask import passwords

pytestmark = pytest.mark.slow

def browser(server) -> requests.Session:
    """A cookie-keeping client with no token, like a browser."""
    session = requests.Session()
    session.trust_env = False
    session.verify = server.verify
    return session


def log_in(server, session, password="mypassword", **fields) -> requests.Response:
    if "_xsrf" not in session.cookies:
        session.get(server.url + "login", timeout=30)
    data = {"password": password, "_xsrf": session.cookies.get("_xsrf"), **fields}
    return session.post(server.url + "login", data=data, allow_redirects=False, timeout=30)


def cookie(session, name):
    return next(c for c in session.cookies if c.name == name)


@pytest.fixture
def seed_server(tmp_path):
    with start_nbflask(tmp_path, {"auth": {"password": SEED_HASH}}) as server:
        yield server


def local_app(server_config):
    """The same deployment built in the test process: same runtime secret, same url map."""
    return nbflask.create_app(server_config)


def test_seed_hash_login_logout_and_open_redirects(seed_server):
    server, session = seed_server, browser(seed_server)
    assert session.get(server.url + "api/status", timeout=30).status_code == 403
    wrong = log_in(server, session, "wrong")
    assert wrong.status_code == 401 and 'name="password"' in wrong.text
    for payload in ("//evil.example/", "\\\\evil.example", "/\\evil.example", "https://evil.example/",
                    "javascript:alert(1)", "/\t/evil.example"):
        response = log_in(server, browser(server), next=payload)
        assert response.status_code == 302
        assert response.headers["Location"] == "/tree", payload
    ok = log_in(server, session, next="/tree/sub")
    assert ok.status_code == 302 and ok.headers["Location"] == "/tree/sub"
    assert session.get(server.url + "api/status", timeout=30).status_code == 200
    session_cookie = cookie(session, session_cookie_name(server.url))
    assert session_cookie.has_nonstandard_attr("HttpOnly") and not session_cookie.secure
    assert session_cookie.path == "/"
    assert session.get(server.url + "logout", timeout=30).status_code == 200
    assert session.get(server.url + "api/status", timeout=30).status_code == 403


def test_xsrf_on_a_real_server(seed_server):
    server, session = seed_server, browser(seed_server)
    log_in(server, session)
    xsrf = session.cookies.get("_xsrf")
    assert not cookie(session, "_xsrf").has_nonstandard_attr("HttpOnly")
    missing = session.post(server.url + "logout", timeout=30)
    assert missing.status_code == 403 and "XSRF" in missing.json()["message"]
    wrong = session.post(server.url + "logout", headers={"X-XSRFToken": xsrf[::-1]}, timeout=30)
    assert wrong.status_code == 403
    assert session.get(server.url + "api/status", timeout=30).status_code == 200  # still logged in
    right = session.post(server.url + "logout", headers={"X-XSRFToken": xsrf}, timeout=30)
    assert right.status_code == 200
    assert session.get(server.url + "api/status", timeout=30).status_code == 403
    # The token header needs no XSRF token: API clients are not browsers.
    assert server.session().post(server.url + "logout", timeout=30).status_code == 200


def test_forged_and_expired_cookies(seed_server, tmp_path, monkeypatch):
    server = seed_server
    app = local_app(str(tmp_path / "nbflask.yaml"))
    serializer = app.session_interface.get_signing_serializer(app)
    valid = serializer.dumps({"user": "owner"})
    stranger = app.session_interface.get_signing_serializer(
        type("Other", (), {"secret_key": b"not the secret" * 3, "config": app.config})()
    )
    import itsdangerous.timed

    real_time = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real_time() - 31 * 24 * 3600)
    expired = serializer.dumps({"user": "owner"})
    monkeypatch.undo()

    def status_with(value: str) -> int:
        session = browser(server)
        session.cookies.set(session_cookie_name(server.url), value, domain="127.0.0.1", path="/")
        return session.get(server.url + "api/status", timeout=30).status_code

    assert status_with(valid) == 200  # the local key is the server's: the forgery test means something
    assert status_with(stranger.dumps({"user": "owner"})) == 403
    assert status_with(valid[:-3] + "abc") == 403
    assert status_with(expired) == 403


def test_tokens_host_origin_and_headers(seed_server):
    server = seed_server
    session = browser(server)
    landing = session.get(server.url + f"tree?token={TOKEN}&sort=name", allow_redirects=False, timeout=30)
    assert landing.status_code == 302 and landing.headers["Location"] == "/tree?sort=name"
    assert session.get(server.url + "api/status", timeout=30).status_code == 200
    assert server.get("api/status").status_code == 200  # Authorization: token ...

    rebound = server.get("api/status", headers={"Host": f"evil.example:{server.port}"})
    assert rebound.status_code == 403 and "unknown host" in rebound.json()["message"]
    assert server.get("api/status", headers={"Host": f"localhost:{server.port}"}).status_code == 200

    for response in (server.get("api/status"), requests.get(server.url + "tree", timeout=30,
                                                            allow_redirects=False)):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"].startswith(
            "frame-ancestors 'self'; report-uri /api/security/csp-report"
        )
    assert "sandbox" in server.get("files/x.html").headers["Content-Security-Policy"]

    ws_url = server.url.replace("http://", "ws://") + "api/kernels/k/channels"
    auth = [f"Authorization: token {TOKEN}"]
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(ws_url, header=auth, origin="http://evil.example", timeout=10)
    assert refused.value.status_code == 403
    try:
        websocket.create_connection(ws_url, header=auth, origin=f"http://127.0.0.1:{server.port}",
                                    timeout=10).close()
    except websocket.WebSocketBadStatusException as same_origin:
        assert same_origin.status_code != 403  # 404 until a kernel exists; never the origin check


def test_every_route_refuses_anonymous_requests_on_the_live_server(seed_server, tmp_path):
    server = seed_server
    session = browser(server)
    checked = 0
    for method, path, headers in guarded_requests(local_app(str(tmp_path / "nbflask.yaml"))):
        response = session.request(method, server.url + path.lstrip("/"), headers=headers,
                                   allow_redirects=False, timeout=30)
        assert_rejected(response.status_code, response.headers.get("Location"), (method, path))
        checked += 1
    assert checked >= 5


def test_secure_cookie_under_real_tls(tmp_path):
    with start_nbflask(tmp_path, {"auth": {"password": SEED_HASH}}, tls=True) as server:
        session = browser(server)
        assert log_in(server, session).status_code == 302
        assert cookie(session, session_cookie_name(server.url)).secure
        assert cookie(session, "_xsrf").secure
        assert session.get(server.url + "api/status", timeout=30).status_code == 200
        ws_url = server.url.replace("https://", "wss://") + "api/kernels/k/channels"
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(
                ws_url, header=[f"Authorization: token {TOKEN}"], origin="https://evil.example",
                sslopt={"ca_certs": str(server.cert)}, timeout=10,
            )
        assert refused.value.status_code == 403


def test_secure_cookie_behind_a_trusted_proxy(tmp_path):
    config = {"auth": {"password": SEED_HASH}, "server": {"trust_xheaders": True}}
    with start_nbflask(tmp_path, config) as server:
        proxied = requests.get(server.url + "login", headers={"X-Forwarded-Proto": "https"}, timeout=30)
        direct = requests.get(server.url + "login", timeout=30)
    cookies = proxied.raw.headers.getlist("Set-Cookie")
    assert {c.split("=")[0] for c in cookies} == {"_xsrf", session_cookie_name(server.url)}
    assert all("Secure" in c for c in cookies)
    assert not any("Secure" in c for c in direct.raw.headers.getlist("Set-Cookie"))


def test_login_rate_limit_then_the_right_password_after_the_window(tmp_path):
    config = {"auth": {"password": SEED_HASH, "login_max_failures": 3, "login_window": 1}}
    with start_nbflask(tmp_path, config) as server:
        session = browser(server)
        assert [log_in(server, session, "bad").status_code for _ in range(3)] == [401, 401, 401]
        blocked = log_in(server, session)
        assert blocked.status_code == 429 and blocked.headers["Retry-After"] == "1"
        time.sleep(1.2)  # on purpose: a client waiting out what Retry-After said is the test
        assert log_in(server, session).status_code == 302


def test_changing_the_password_logs_everyone_out(tmp_path):
    with start_nbflask(tmp_path, {"auth": {"password": SEED_HASH}}) as server:
        session = browser(server)
        log_in(server, session)
        old_cookie = session.cookies.get(session_cookie_name(server.url))
    new_hash = passwords.hash_password("n3w")
    with start_nbflask(tmp_path, {"auth": {"password": new_hash}}) as server:
        session = browser(server)
        session.cookies.set(session_cookie_name(server.url), old_cookie, domain="127.0.0.1", path="/")
        assert session.get(server.url + "api/status", timeout=30).status_code == 403
        assert log_in(server, browser(server), "n3w").status_code == 302


def test_plain_text_password_is_refused_at_start_up(tmp_path):
    config = write_config(tmp_path, {"auth": {"password": "mypassword"}, "server": {"open_browser": False}})
    done = subprocess.run(
        [str(BIN / "nbflask"), "run", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "nbflask passwd" in lines[0] and "auth.password" in lines[0]
    assert "mypassword" not in done.stderr



def test_two_servers_on_one_host_keep_their_own_logins_xsrf_and_websockets(tmp_path):
    """Browsers keep cookies per host name, not per port: with one session cookie name, logging
    into one server logged the browser out of the other (Jupyter names its cookie per host
    and port). Both `_xsrf` tokens live in the one `_xsrf` cookie the pages read."""
    config = {"auth": {"password": SEED_HASH}}
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with start_nbflask(tmp_path / "one", config) as one, start_nbflask(tmp_path / "two", config) as two:
        session = browser(one)
        assert log_in(one, session).status_code == 302
        session.get(two.url + "login", timeout=30)  # the page of the login form: its `_xsrf` joins one's
        assert log_in(two, session).status_code == 302
        for server in (one, two, one, two):  # the pages take turns, as two tabs would
            assert session.get(server.url + "api/status", timeout=30).status_code == 200
            saved = session.put(server.url + "api/contents/turn.txt", timeout=30,
                                json={"type": "file", "format": "text", "content": server.url},
                                headers={"X-XSRFToken": session.cookies.get("_xsrf")})
            assert saved.status_code in (200, 201), saved.text
            cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
            events = websocket.create_connection(
                server.url.replace("http", "ws", 1) + "api/events/subscribe", cookie=cookies,
                origin=server.url.rstrip("/"), timeout=10)
            events.close()
        assert session.get(one.url + "logout", timeout=30).status_code == 200
        assert session.get(one.url + "api/status", timeout=30).status_code == 403
        assert session.get(two.url + "api/status", timeout=30).status_code == 200
