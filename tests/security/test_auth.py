"""Login, logout, cookies, tokens and XSRF through Flask's test client.

The same behaviour is checked against real servers in test_auth_live.py; these tests pin the
details (cookie attributes, each redirect payload, each XSRF case) quickly.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
from conftest import TOKEN
from flask import jsonify
from logins import SEED_HASH, log_in, xsrf_of

from nbflask import passwords
from nbflask.blueprints.auth import LIMITER
from nbflask.config import ConfigError

SESSION = "nbflask-session-localhost"  # the session cookie of a server the browser calls localhost
# The front-ends' bundles, themes and extension files are the open-source builds, nothing of
# the user's: public, so browsers and proxies may cache them.
ASSET_ENDPOINTS = {
    "assets.lab_static", "assets.notebook_static", "assets.theme", "assets.extension_static",
    "assets.favicon",
}
PUBLIC_ENDPOINTS = {"api.version", "auth.login", "static"} | ASSET_ENDPOINTS


def add_echo_route(app):
    """An unsafe-method route, as the contents and kernels blueprints will have."""

    def echo():
        return jsonify(ok=True)

    app.add_url_rule("/api/echo", "echo", echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    ws_rule = "/api/echo/<int:number>/<any(x, y):which>/<uuid:uid>/<path:rest>/channels"
    app.add_url_rule(ws_rule, "echo_ws", echo, websocket=True)
    return app


@pytest.fixture
def seed_app(make_app):
    return add_echo_route(make_app({"auth": {"password": SEED_HASH}}))


@pytest.fixture
def browser(seed_app):
    return seed_app.test_client()


def test_login_with_the_seed_sha1_hash(browser):
    assert browser.get("/api/status").status_code == 403
    response = log_in(browser)
    assert response.status_code == 302
    assert response.headers["Location"] == "/tree"
    assert browser.get("/api/status").status_code == 200
    assert browser.get("/tree").status_code == 200


def test_login_with_an_argon2_hash_and_no_token(make_app):
    app = make_app({"auth": {"password": passwords.hash_password("hunter2"), "token": ""}})
    browser = app.test_client()
    assert log_in(browser, "").status_code == 401
    assert log_in(browser, TOKEN).status_code == 401
    assert log_in(browser, "hunter2").status_code == 302
    assert browser.get("/api/status").status_code == 200


def test_the_token_logs_in_through_the_form_too(browser):
    assert log_in(browser, TOKEN).status_code == 302
    assert browser.get("/api/status").status_code == 200


def test_wrong_password_is_401_with_the_form_again(browser):
    response = log_in(browser, "not-it")
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert 'name="password"' in page and "Invalid credentials" in page
    assert browser.get("/api/status").status_code == 403


def test_login_page_lives_under_base_url(make_app):
    app = make_app({"server": {"base_url": "/ipython/"}, "auth": {"password": SEED_HASH}})
    browser = app.test_client()
    page = browser.get("/ipython/login?next=/ipython/tree/a")
    assert page.status_code == 200
    assert 'action="/ipython/login"' in page.get_data(as_text=True)
    assert browser.get("/ipython/tree").headers["Location"].startswith("/ipython/login?next=")
    response = log_in(browser, base="/ipython/", next="/ipython/tree/a")
    assert response.headers["Location"] == "/ipython/tree/a"
    assert browser.get("/ipython/api/status").status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        "//evil.example/",
        "\\\\evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "http:evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
        "",
    ],
)
def test_next_never_leaves_the_server(browser, payload):
    response = log_in(browser, next=payload)
    assert response.status_code == 302
    assert response.headers["Location"] == "/tree"


def test_next_outside_the_prefix_goes_to_the_dashboard(make_app):
    app = make_app({"server": {"base_url": "/ipython/"}, "auth": {"password": SEED_HASH}})
    response = log_in(app.test_client(), base="/ipython/", next="/elsewhere/")
    assert response.headers["Location"] == "/ipython/tree"


def test_next_keeps_a_local_path_and_query(browser):
    response = log_in(browser, next="/tree/sub dir?sort=name")
    assert response.headers["Location"] == "/tree/sub%20dir?sort=name"


def test_logged_in_visit_to_login_goes_on(browser):
    log_in(browser)
    assert browser.get("/login?next=/tree/x").headers["Location"] == "/tree/x"


def test_logout_clears_the_session(browser):
    log_in(browser)
    page = browser.get("/logout")
    assert page.status_code == 200 and "logged out" in page.get_data(as_text=True)
    assert browser.get("/api/status").status_code == 403
    assert browser.get("/tree").status_code == 302


def test_session_cookie_attributes(browser):
    response = log_in(browser)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(SESSION + "="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/;" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_under_https_and_a_trusted_proxy(make_app):
    app = make_app({"auth": {"password": SEED_HASH}, "server": {"trust_xheaders": True}})
    browser = app.test_client()
    xsrf = xsrf_of(browser)
    data = {"password": "mypassword", "_xsrf": xsrf}
    direct = browser.post("/login", data=data, base_url="https://localhost")
    proxied = browser.post("/login", data=data, headers={"X-Forwarded-Proto": "https"})
    for response in (direct, proxied):
        cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(SESSION + "="))
        assert "Secure" in cookie


def test_untrusted_forwarded_proto_does_not_make_cookies_secure(browser):
    xsrf = xsrf_of(browser)
    response = browser.post(
        "/login", data={"password": "mypassword", "_xsrf": xsrf}, headers={"X-Forwarded-Proto": "https"}
    )
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(SESSION + "="))
    assert "Secure" not in cookie


def test_a_forged_cookie_is_refused(seed_app, make_app):
    browser = seed_app.test_client()
    log_in(browser)
    # The same session signed with a key that is not this deployment's.
    serializer = seed_app.session_interface.get_signing_serializer(seed_app)
    forged_with = seed_app.session_interface.get_signing_serializer(
        type("Other", (), {"secret_key": b"x" * 32, "config": seed_app.config})()
    )
    assert serializer is not None and forged_with is not None
    anonymous = seed_app.test_client()
    anonymous.set_cookie(SESSION, forged_with.dumps({"user": "owner"}))
    assert anonymous.get("/api/status").status_code == 403
    tampered = browser.get_cookie(SESSION).value[:-2] + "AA"
    anonymous.set_cookie(SESSION, tampered)
    assert anonymous.get("/api/status").status_code == 403


def test_an_expired_cookie_is_refused(make_app, monkeypatch):
    app = make_app({"auth": {"password": SEED_HASH, "session_lifetime": 3600}})
    serializer = app.session_interface.get_signing_serializer(app)
    browser = app.test_client()
    browser.set_cookie(SESSION, serializer.dumps({"user": "owner"}))
    assert browser.get("/api/status").status_code == 200
    import itsdangerous.timed

    real_time = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real_time() - 3601)
    old = serializer.dumps({"user": "owner"})
    monkeypatch.undo()
    browser.set_cookie(SESSION, old)
    assert browser.get("/api/status").status_code == 403


def test_changing_the_password_invalidates_old_cookies(make_app):
    first = make_app({"auth": {"password": SEED_HASH}}).test_client()
    log_in(first)
    cookie = first.get_cookie(SESSION).value

    restarted = make_app({"auth": {"password": SEED_HASH}}).test_client()
    restarted.set_cookie(SESSION, cookie)
    assert restarted.get("/api/status").status_code == 200  # same credentials: still logged in

    changed = make_app({"auth": {"password": passwords.hash_password("new")}}).test_client()
    changed.set_cookie(SESSION, cookie)
    assert changed.get("/api/status").status_code == 403


def test_tokens_are_generated_unless_configured(make_app):
    first = make_app({"auth": {"token": "auto"}}).extensions["nbflask"].token
    second = make_app({"auth": {"token": "auto"}}).extensions["nbflask"].token
    assert len(first) >= 32 and first != second
    assert make_app().extensions["nbflask"].token == TOKEN


def test_empty_token_needs_a_password(make_app):
    with pytest.raises(ConfigError, match="auth.token"):
        make_app({"auth": {"token": ""}})


def test_query_token_logs_in_and_strips_itself(anonymous):
    response = anonymous.get(f"/tree/a%20b?sort=name&token={TOKEN}&x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/tree/a%20b?sort=name&x=1"
    assert "token" not in response.headers["Location"]
    assert anonymous.get("/api/status").status_code == 200


def test_token_header_for_api_clients(anonymous):
    assert anonymous.get("/api/status", headers={"Authorization": f"token {TOKEN}"}).status_code == 200
    assert anonymous.get("/api/status", headers={"Authorization": "token nope"}).status_code == 403


# XSRF -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_cookie_requests_need_the_xsrf_token(browser, method):
    log_in(browser)
    call = getattr(browser, method)
    missing = call("/api/echo")
    assert missing.status_code == 403
    assert "XSRF" in missing.get_json()["message"]
    assert call("/api/echo", headers={"X-XSRFToken": "wrong"}).status_code == 403
    xsrf = browser.get_cookie("_xsrf").value
    assert call("/api/echo", headers={"X-XSRFToken": xsrf}).status_code == 200


def test_xsrf_form_field_and_logout_post(browser):
    log_in(browser)
    xsrf = browser.get_cookie("_xsrf").value
    assert browser.post("/api/echo", data={"_xsrf": xsrf}).status_code == 200
    assert browser.post("/logout").status_code == 403
    assert browser.post("/logout", data={"_xsrf": xsrf}).status_code == 200
    assert browser.get("/api/status").status_code == 403


def test_a_planted_xsrf_cookie_proves_nothing(browser):
    log_in(browser)
    browser.set_cookie("_xsrf", "attacker-chosen")
    assert browser.post("/api/echo", headers={"X-XSRFToken": "attacker-chosen"}).status_code == 403


def test_token_header_requests_are_exempt_from_xsrf(seed_app):
    api_client = seed_app.test_client()
    response = api_client.post("/api/echo", headers={"Authorization": f"token {TOKEN}"})
    assert response.status_code == 200


def test_login_form_needs_the_xsrf_token(browser):
    response = browser.post("/login", data={"password": "mypassword"})
    assert response.status_code == 403
    assert browser.get("/api/status").status_code == 403


def test_xsrf_cookie_is_readable_by_scripts(browser):
    response = browser.get("/login")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("_xsrf="))
    assert "HttpOnly" not in cookie and "SameSite=Lax" in cookie and "Path=/;" in cookie


# Login rate limiting -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_repeated_failures_get_429_until_the_window_passes(make_app):
    app = make_app({"auth": {"password": SEED_HASH, "login_max_failures": 3, "login_window": 30}})
    clock = Clock()
    app.extensions[LIMITER].clock = clock
    browser = app.test_client()
    assert [log_in(browser, "bad").status_code for _ in range(3)] == [401, 401, 401]
    blocked = log_in(browser, "bad")
    assert blocked.status_code == 429
    assert blocked.headers["Retry-After"] == "30"
    assert log_in(browser).status_code == 429  # even the right password waits
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "127.0.0.9"
    assert log_in(other).status_code == 302  # another client is not blocked
    clock.now += 12
    assert log_in(browser).headers["Retry-After"] == "18"
    clock.now += 18
    assert log_in(browser).status_code == 302


def test_rate_limit_counts_the_forwarded_client_behind_a_trusted_proxy(make_app):
    app = make_app(
        {"auth": {"password": SEED_HASH, "login_max_failures": 2}, "server": {"trust_xheaders": True}}
    )
    first, second = app.test_client(), app.test_client()
    first.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.1"
    second.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.2"
    assert [log_in(first, "bad").status_code for _ in range(3)] == [401, 401, 429]
    assert log_in(second).status_code == 302


# Every route is guarded -----------------------------------------------------------------------


def dummy_values(rule) -> dict[str, object]:
    """A value for each variable of a rule, so any route can be requested."""
    samples = {"IntegerConverter": 1, "FloatConverter": 1.5, "UUIDConverter": uuid.uuid4()}
    values: dict[str, object] = {}
    for name, converter in rule._converters.items():
        kind = type(converter).__name__
        values[name] = sorted(converter.items)[0] if kind == "AnyConverter" else samples.get(kind, "dummy")
    return values


def guarded_requests(app):
    """(method, path, headers) for every method of every route not reviewed as public.

    Generic on purpose: routes merged later (contents, kernels, ...) are walked too.
    """
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        public = getattr(app.view_functions[rule.endpoint], "nbflask_public", False)
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        assert not public, f"{rule.rule} is @public but not in the reviewed list {PUBLIC_ENDPOINTS}"
        # Websocket rules build as ws:// URLs: keep the path.
        path = urlsplit(adapter.build(rule.endpoint, dummy_values(rule), append_unknown=False)).path
        # Websocket rules only match upgrade requests (werkzeug routes them by the Upgrade header).
        headers = {"Upgrade": "websocket", "Connection": "Upgrade"} if rule.websocket else {}
        for method in sorted(rule.methods or ()):
            yield method, path, headers


def assert_rejected(status: int, location: str | None, what: object) -> None:
    """Refused: pages redirect to the login form, everything else is 403."""
    if status == 302:
        assert (location or "").startswith("/login?next="), what
    else:
        assert status == 403, (what, status)


def test_every_route_rejects_an_unauthenticated_request(make_app):
    app = add_echo_route(make_app({"auth": {"password": SEED_HASH}}))
    checked = 0
    for method, path, headers in guarded_requests(app):
        response = app.test_client().open(path, method=method, headers=headers)
        assert_rejected(response.status_code, response.headers.get("Location"), (method, path))
        checked += 1
    assert checked >= 5
