"""Host check (DNS rebinding), websocket Origin, CORS and the headers on every response."""

from __future__ import annotations

import json

import pytest
from conftest import TOKEN

from nbflask import security
from nbflask.config import load_settings

WS = {"Upgrade": "websocket", "Connection": "Upgrade"}


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:8888", "LOCALHOST:1", "127.0.0.1", "127.0.0.1:9999", "127.8.9.10:80",
     "[::1]", "[::1]:8888"],
)
def test_local_hosts_are_allowed(client, host):
    assert client.get("/api/status", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8888", "10.0.0.1:8888", "[2001:db8::1]:80", ""]
)
def test_a_rebinding_host_header_is_refused(client, anonymous, host):
    response = client.get("/api/status", headers={"Host": host})
    assert response.status_code == 403
    assert "unknown host" in response.get_json()["message"]
    # Before auth too: the login page and public /api are not served to a rebound name.
    assert anonymous.get("/login", headers={"Host": host}).status_code == 403
    assert anonymous.get("/api", headers={"Host": host}).status_code == 403


def test_configured_names_and_remote_access(make_app):
    named = make_app({"auth": {"local_hostnames": ["localhost", "nb.internal"]}}).test_client()
    assert named.get("/api", headers={"Host": "nb.internal:8888"}).status_code == 200
    assert named.get("/api", headers={"Host": "evil.example"}).status_code == 403
    remote = make_app({"auth": {"allow_remote_access": True}}).test_client()
    assert remote.get("/api", headers={"Host": "evil.example"}).status_code == 200
    public = make_app({"server": {"ip": "*"}}).test_client()
    assert public.get("/api", headers={"Host": "notebooks.example.org"}).status_code == 200


def test_remote_access_rule():
    def allowed(ip: str, remote: bool = False) -> bool:
        settings = load_settings({"server": {"ip": ip}, "auth": {"allow_remote_access": remote}})
        return security.remote_access_allowed(settings)

    assert not allowed("127.0.0.1") and not allowed("localhost") and not allowed("::1")
    assert allowed("*") and allowed("0.0.0.0") and allowed("192.168.1.5") and allowed("127.0.0.1", True)


def test_hostname_parsing():
    assert security.hostname("[::1]:8888") == "::1"
    assert security.hostname("Example.ORG:443") == "example.org"
    assert security.hostname("::1") == "::1"


# Websocket Origin ---------------------------------------------------------------------------


@pytest.fixture
def ws_app(make_app):
    def build(config=None):
        app = make_app(config)

        def channels(kernel_id):
            return {"kernel": kernel_id}

        app.add_url_rule("/api/test-ws/<kernel_id>/channels", "test_ws", channels, websocket=True)
        return app

    return build


def test_cross_origin_websocket_is_refused(ws_app):
    client = ws_app().test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    url = "/api/test-ws/k1/channels"
    refused = client.get(url, headers={**WS, "Origin": "http://evil.example"})
    assert refused.status_code == 403 and "Cross-origin" in refused.get_json()["message"]
    assert client.get(url, headers={**WS, "Origin": "null"}).status_code == 403
    assert client.get(url, headers={**WS, "Origin": "http://localhost"}).status_code == 200
    assert client.get(url, headers={**WS, "Origin": "http://localhost:8080"}).status_code == 403
    assert client.get(url, headers=WS).status_code == 200  # non-browser clients send no Origin


def test_configured_websocket_origins(ws_app):
    client = ws_app({"auth": {"allow_origin": ["https://lab.example.org"]}}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    url = "/api/test-ws/k1/channels"
    assert client.get(url, headers={**WS, "Origin": "https://lab.example.org"}).status_code == 200
    assert client.get(url, headers={**WS, "Origin": "https://evil.example"}).status_code == 403
    anything = ws_app({"auth": {"allow_origin": "*"}}).test_client()
    anything.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    assert anything.get(url, headers={**WS, "Origin": "https://any.example"}).status_code == 200


def test_origin_is_checked_before_credentials(ws_app):
    anonymous = ws_app().test_client()
    response = anonymous.get("/api/test-ws/k1/channels", headers={**WS, "Origin": "http://evil.example"})
    assert "Cross-origin" in response.get_json()["message"]


# CORS ---------------------------------------------------------------------------------------


def test_cors_answers_only_configured_origins(make_app):
    app = make_app({"auth": {"allow_origin": ["https://lab.example.org"]}})
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    allowed = client.get("/api/status", headers={"Origin": "https://lab.example.org"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://lab.example.org"
    assert "Origin" in allowed.headers["Vary"]
    other = client.get("/api/status", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers

    preflight = {"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization"}
    anonymous = app.test_client()
    ok = anonymous.options("/api/status", headers={**preflight, "Origin": "https://lab.example.org"})
    assert ok.status_code == 204
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    assert "PUT" in ok.headers["Access-Control-Allow-Methods"]
    refused = anonymous.options("/api/status", headers={**preflight, "Origin": "https://evil.example"})
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers


def test_no_cors_by_default(client):
    response = client.get("/api/status", headers={"Origin": "http://localhost:9999"})
    assert "Access-Control-Allow-Origin" not in response.headers


# Headers on every response -------------------------------------------------------------------


PAGE_CSP = "frame-ancestors 'self'; report-uri /api/security/csp-report"
API_CSP = PAGE_CSP + "; default-src 'none'"  # exactly Jupyter Server's


def test_security_headers_on_every_kind_of_response(client, anonymous):
    responses = {
        "ok": client.get("/api/status"),
        "page": client.get("/tree"),
        "redirect": anonymous.get("/tree"),
        "slash": anonymous.get("/tree/"),
        "forbidden": anonymous.get("/api/status"),
        "not found": client.get("/api/nope"),
        "static": anonymous.get("/static/style.css"),
        "login": anonymous.get("/login"),
        "bad host": client.get("/api", headers={"Host": "evil.example"}),
    }
    for name, response in responses.items():
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        expected = API_CSP if response.request.path.startswith("/api") else PAGE_CSP
        assert response.headers["Content-Security-Policy"] == expected, name


def test_the_csp_report_uri_is_under_the_prefix(make_app):
    client = make_app({"server": {"base_url": "/ipython/"}}).test_client()
    assert client.get("/ipython/api").headers["Content-Security-Policy"] == (
        "frame-ancestors 'self'; report-uri /ipython/api/security/csp-report; default-src 'none'"
    )
    assert client.get("/ipython/login").headers["Content-Security-Policy"] == (
        "frame-ancestors 'self'; report-uri /ipython/api/security/csp-report"
    )


def test_csp_reports_are_logged_and_answered_like_jupyter(app, client, caplog):
    report = '{"csp-report": {"document-uri": "http://localhost/tree", "violated-directive": "script-src"}}'
    with caplog.at_level("WARNING"):
        response = client.post("/api/security/csp-report", data=report, content_type="application/csp-report")
    assert response.status_code == 200 and response.data == b""
    assert "Content security violation" in caplog.text and "violated-directive" in caplog.text
    assert client.get("/api/security/csp-report").status_code == 405
    assert app.test_client().post("/api/security/csp-report", data=report).status_code == 403
    browser = app.test_client()  # a logged-in browser posts reports without an XSRF header
    browser.get(f"/tree?token={TOKEN}")
    assert browser.post("/api/security/csp-report", data=report).status_code == 200
    assert browser.post("/api/contents", json={}).status_code == 403  # other routes still check


def test_files_are_sandboxed(client):
    response = client.get("/files/page.html")
    policy = response.headers["Content-Security-Policy"]
    assert "sandbox" in policy.split("; ") and "frame-ancestors 'self'" in policy


def test_the_policy_is_configurable(make_app):
    app = make_app({"auth": {"content_security_policy": "frame-ancestors 'self' https://portal.example"}})
    client = app.test_client()
    assert client.get("/api").headers["Content-Security-Policy"] == (
        "frame-ancestors 'self' https://portal.example; " + API_CSP.split("; ", 1)[1]
    )
    own = {"content_security_policy": "default-src 'self'; report-uri /r"}
    custom = make_app({"auth": own}).test_client()
    assert custom.get("/api").headers["Content-Security-Policy"] == "default-src 'self'; report-uri /r"


def test_a_views_own_policy_is_kept_with_frame_ancestors():
    own = "sandbox; default-src 'none'"
    policy = security.content_security_policy
    assert policy("/files/a", "frame-ancestors 'self'", own) == own + "; frame-ancestors 'self'"
    assert policy("/files/a", "frame-ancestors 'none'", own + "; frame-ancestors 'self'").count("frame") == 1
    assert policy("/files/a", "", own) == own
    assert policy("/tree", "", None) is None


def test_login_limiter_forgets_clients_under_a_flood(tmp_path):
    now = [0.0]
    path = tmp_path / "attempts.json"
    limiter = security.LoginLimiter(path, 3, 60, clock=lambda: now[0], max_clients=100)
    for n in range(1000):
        limiter.attempt(f"10.0.{n // 256}.{n % 256}")
    assert len(json.loads(path.read_bytes())) <= 100
    assert path.stat().st_mode & 0o777 == 0o600


def test_login_limiter_is_shared_through_its_file(tmp_path):
    """Two limiters on one file (two workers) count together; other scopes count apart."""
    path = tmp_path / "attempts.json"
    first, second = (security.LoginLimiter(path, 3, 60, scope="1") for _ in range(2))
    other_deployment = security.LoginLimiter(path, 3, 60, scope="2")
    assert [first.attempt("a"), second.attempt("a"), first.attempt("a")] == [0, 0, 0]
    assert second.attempt("a") == 60 and first.attempt("a") > 0
    assert other_deployment.attempt("a") == 0 and first.attempt("b") == 0
    path.write_bytes(b'{"1/c": {"tri')  # cut short by a crash: forgotten, not fatal
    assert first.attempt("c") == 0


def test_the_xsrf_cookie_keeps_other_servers_tokens_and_picks_its_own():
    value = None
    for port in range(8880, 8890):  # ten servers on one host name
        value = security.xsrf_cookie_value(value, f"localhost-{port}", f"token{port}")
    entries = value.split("|")
    assert len(entries) == security.XSRF_ENTRIES and entries[-1] == "localhost-8889:token8889"
    assert security.xsrf_echoed_token(value, "localhost-8885") == "token8885"
    assert security.xsrf_echoed_token(value, "localhost-8880") == ""  # the oldest made room
    again = security.xsrf_cookie_value(value, "localhost-8885", "fresh")
    assert again.count("localhost-8885:") == 1 and again.endswith("localhost-8885:fresh")
    assert security.xsrf_echoed_token("bare-form-token", "localhost-8888") == "bare-form-token"
    assert security.cookie_scope("127.0.0.1:8888", "/ipython") == "127-0-0-1-8888-ipython"
