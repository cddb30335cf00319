"""The single auth gate in front of every route, plus the login and logout pages.

Routes are private unless their view is marked `@public`; the gate runs before every request
of the app, so a new blueprint is guarded without remembering to be.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, session, url_for

from ..app import state
from ..errors import json_error

bp = Blueprint("auth", __name__)

View = TypeVar("View", bound=Callable)


def public(view: View) -> View:
    """Mark a view as reachable without credentials."""
    view.nbflask_public = True  # type: ignore[attr-defined]
    return view


def is_public(endpoint: str | None) -> bool:
    if endpoint is None or endpoint == "static":
        return True
    view = current_app.view_functions.get(endpoint)
    return bool(getattr(view, "nbflask_public", False))


def token_matches(given: str | None) -> bool:
    expected = state().token
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def header_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


def is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


@bp.before_app_request
def gate() -> Response | None:
    if is_public(request.endpoint):
        return None
    if token_matches(header_token()):
        g.user, g.auth_via = "token", "header"
        return None
    query_token = request.args.get("token")
    if token_matches(query_token):
        if not is_api_request() and request.method == "GET":
            # Log the browser in and drop the token from the address bar and Referer.
            session["user"] = "token"
            session.permanent = True
            args = request.args.to_dict(flat=False)
            args.pop("token", None)
            target = request.script_root + request.path
            return redirect(target + ("?" + urlencode(args, doseq=True) if args else ""))
        g.user, g.auth_via = "token", "query"
        return None
    if session.get("user"):
        g.user, g.auth_via = session["user"], "cookie"
        return None
    if is_api_request() or request.method != "GET":
        return json_error(403, "Forbidden: log in or send 'Authorization: token <token>'")
    next_url = request.full_path if request.query_string else request.path
    return redirect(url_for("auth.login", next=request.script_root + next_url))


def safe_next(target: str | None) -> str:
    """Only paths on this server: anything with a scheme, host or backslash goes home."""
    home = url_for("dashboard.tree")
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return home
    if any(ord(c) < 32 for c in target):
        return home
    if not target.startswith(request.script_root + "/") and target != request.script_root:
        return home
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response | str:
    next_url = safe_next(request.values.get("next"))
    if request.method == "POST":
        if token_matches(request.form.get("password")):
            session.clear()
            session["user"] = "token"
            session.permanent = True
            return redirect(next_url)
        return render_template("login.html", next=next_url, error="Invalid credentials"), 401
    return render_template("login.html", next=next_url, error=None)


@bp.route("/logout", methods=["GET", "POST"])
@public
def logout() -> str:
    session.clear()
    return render_template("logout.html")
