"""The single auth gate in front of every route, plus the login and logout pages.

Routes are private unless their view is marked `@public`; the factory (`nbflask.app`) runs
the gate before every request of the app, so a new blueprint is guarded without remembering
to be. Before the gate, every request passes the Host check (DNS rebinding) and websocket
upgrades the Origin check; after it, every response gets the security headers. The factory
also installs `SessionInterface` and the login limiter. The rules themselves live in
`nbflask.security`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface

from .. import passwords, security
from ..blocking import run_blocking
from ..errors import json_error
from ..state import state

bp = Blueprint("auth", __name__)

View = TypeVar("View", bound=Callable)

XSRF_COOKIE = "_xsrf"
XSRF_HEADERS = ("X-XSRFToken", "X-CSRFToken")
LIMITER = "nbflask.login_limiter"


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with name, Secure and Path decided per request.

    The name carries the host and port the browser sees (`security.cookie_scope`), so two
    servers on one host name do not overwrite each other's login. Secure follows the
    request's scheme, so the cookie is Secure under TLS and behind a trusted proxy that says
    https (ProxyFix sets the scheme); Path is the server's prefix as the browser sees it,
    including a prefix added by a proxy.
    """

    def get_cookie_name(self, app: Flask) -> str:
        if not has_request_context():
            return super().get_cookie_name(app)
        return security.session_cookie_name(cookie_scope())

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (has_request_context() and request.is_secure)

    def get_cookie_path(self, app: Flask) -> str:
        return cookie_path() if has_request_context() else super().get_cookie_path(app)


def public(view: View) -> View:
    """Mark a view as reachable without credentials."""
    view.nbflask_public = True  # type: ignore[attr-defined]
    return view


def xsrf_exempt(view: View) -> View:
    """Mark a view whose unsafe requests need no XSRF token (browsers' own CSP reports)."""
    view.nbflask_xsrf_exempt = True  # type: ignore[attr-defined]
    return view


def _marked(endpoint: str | None, mark: str) -> bool:
    view = current_app.view_functions.get(endpoint) if endpoint else None
    return bool(getattr(view, mark, False))


def is_public(endpoint: str | None) -> bool:
    return endpoint is None or endpoint == "static" or _marked(endpoint, "nbflask_public")


def cookie_path() -> str:
    return request.script_root + "/"


def cookie_scope() -> str:
    return security.cookie_scope(request.host, request.script_root)


def token_matches(given: str | None) -> bool:
    expected = state().token
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def verify_password(stored: str, given: str) -> bool:
    """Check a password without stalling the server.

    argon2 spends about 0.15 s of CPU with the GIL released; under gevent that would freeze
    every other greenlet (websocket relays included), so it runs on gevent's thread pool.
    """
    return run_blocking(passwords.verify, stored, given)


def credentials_match(given: str) -> bool:
    """The login form takes the password, or the token (as Jupyter's does)."""
    password = state().settings.auth.password
    return (bool(password) and verify_password(password, given)) or token_matches(given)


def header_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


def is_api_request() -> bool:
    """API calls (Jupyter's and the front-ends' `/lab/api/`) and websockets (a terminal's lives
    outside /api) get 403, never a login redirect."""
    return (request.path == "/api" or request.path.startswith(("/api/", "/lab/api/"))
            or request.headers.get("Upgrade", "").lower() == "websocket")


def log_in() -> None:
    """Start a fresh session for the owner (a new session, so nothing planted before survives)."""
    session.clear()
    session["user"] = "owner"
    session.permanent = True


def xsrf_token() -> str:
    """This session's XSRF token, made on first use; templates put it in forms."""
    if XSRF_COOKIE not in session:  # hex: the front-ends' cookie reader drops a trailing '-'
        session[XSRF_COOKIE] = secrets.token_hex(32)
    return session[XSRF_COOKIE]


def xsrf_problem() -> str | None:
    """Why this unsafe cookie-authenticated request fails the XSRF check, or None if it passes.

    The token is kept in the signed session and mirrored in the `_xsrf` cookie for scripts to
    echo; a value planted in the `_xsrf` cookie by another site therefore proves nothing.
    Pages echo that whole cookie, which also holds other servers' tokens: ours is picked out.
    """
    given = next((request.headers[h] for h in XSRF_HEADERS if request.headers.get(h)), None)
    if given is None:
        given = request.form.get("_xsrf")
    if not given:
        return "XSRF token missing: echo the _xsrf cookie in an X-XSRFToken header or _xsrf form field"
    given = security.xsrf_echoed_token(given, cookie_scope())
    expected = session.get(XSRF_COOKIE)
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return "XSRF token does not match this session: reload the page and try again"
    return None


def template_helpers() -> dict[str, Callable[[], str]]:
    """What every template may call: `xsrf_token()` for the forms' hidden field."""
    return {"xsrf_token": xsrf_token}


def check_host() -> Response | None:
    """DNS rebinding: while serving locally, only Host headers naming this machine."""
    if security.host_allowed(request.host, state().settings):
        return None
    return json_error(
        403, f"Blocking request from unknown host {request.host!r}: set auth.allow_remote_access"
        " or auth.local_hostnames to serve it"
    )


def check_websocket_origin() -> Response | None:
    """A page of another site may open a websocket with our cookies: only allowed origins."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return None
    origin = request.headers.get("Origin")
    if security.origin_allowed(origin, request.host, state().settings.auth.allow_origin):
        return None
    return json_error(403, f"Cross-origin websocket from {origin!r} refused: add it to auth.allow_origin")


def answer_preflight() -> Response | None:
    """CORS preflights carry no credentials: answer them for configured origins only."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    if not security.configured_origin(request.headers.get("Origin", ""), state().settings.auth.allow_origin):
        return None
    response = current_app.response_class(status=204)
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-XSRFToken"
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def gate() -> Response | None:
    """Credentials for every route not marked `@public`: the token (header or query) or the
    session cookie with its XSRF echo; else 403 for the API, the login page for browsers."""
    if is_public(request.endpoint):
        return None
    if token_matches(header_token()):
        g.user, g.auth_via = "owner", "header"
        return None
    query_token = request.args.get("token")
    if token_matches(query_token):
        if not is_api_request() and request.method == "GET":
            # Log the browser in and drop the token from the address bar and Referer.
            log_in()
            args = request.args.to_dict(flat=False)
            args.pop("token", None)
            target = security.url_path(request.script_root + request.path)
            return redirect(target + ("?" + urlencode(args, doseq=True) if args else ""))
        g.user, g.auth_via = "owner", "query"
        return None
    if session.get("user"):
        g.user, g.auth_via = session["user"], "cookie"
        exempt = _marked(request.endpoint, "nbflask_xsrf_exempt")
        problem = xsrf_problem() if request.method in security.UNSAFE_METHODS and not exempt else None
        return json_error(403, problem) if problem else None
    if is_api_request() or request.method not in ("GET", "HEAD"):
        return json_error(403, "Forbidden: log in or send 'Authorization: token <token>'")
    next_url = security.url_path(request.script_root + request.path)
    if request.query_string:
        next_url += "?" + security.url_query(request.query_string)
    return redirect(url_for("auth.login", next=next_url))


def security_headers(response: Response) -> Response:
    """nosniff and the Content-Security-Policy on every answer, CORS for configured origins."""
    settings = state().settings
    response.headers["X-Content-Type-Options"] = "nosniff"
    policy = security.content_security_policy(
        request.path, settings.auth.content_security_policy, response.headers.get("Content-Security-Policy"),
        request.script_root,
    )
    if policy:
        response.headers["Content-Security-Policy"] = policy
    allowed = security.configured_origin(request.headers.get("Origin", ""), settings.auth.allow_origin)
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = allowed
        response.vary.add("Origin")
    return response


def xsrf_cookie(response: Response) -> Response:
    """Mirror the session's XSRF token in a cookie scripts can read (not HttpOnly)."""
    if request.endpoint == "static" or request.blueprint == "assets":
        return response
    if not (response.mimetype == "text/html" or session.get("user")):
        return response
    token = xsrf_token()
    current, scope = request.cookies.get(XSRF_COOKIE), cookie_scope()
    if current is None or security.xsrf_echoed_token(current, scope) != token:
        value = security.xsrf_cookie_value(current, scope, token)
        response.set_cookie(
            XSRF_COOKIE, value, path=cookie_path(), secure=request.is_secure, httponly=False, samesite="Lax"
        )
    return response


def next_target() -> str:
    home = request.script_root + state().settings.ui.default_url
    return security.safe_next(request.values.get("next"), request.script_root, home)


def login_page(error: str | None, status: int = 200) -> tuple[str, int]:
    return render_template("login.html", next=next_target(), error=error), status


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response | tuple[str, int]:
    if request.method == "GET":
        if session.get("user"):
            return redirect(next_target())
        return login_page(None)
    if xsrf_problem():
        return login_page("The form expired: please try again.", 403)
    limiter: security.LoginLimiter = current_app.extensions[LIMITER]
    client = request.remote_addr or "unknown"
    wait = run_blocking(limiter.attempt, client)  # counted before the check, in every worker
    if wait:
        page, status = login_page(f"Too many failed attempts: try again in {wait} s.", 429)
        return Response(page, status, headers={"Retry-After": str(wait)}, mimetype="text/html")
    if credentials_match(request.form.get("password", "")):
        run_blocking(limiter.succeeded, client)
        log_in()
        return redirect(next_target())
    return login_page("Invalid credentials", 401)


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> str:
    session.clear()
    g.user = None
    return render_template("logout.html")
