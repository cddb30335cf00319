"""The server-wide API routes of Jupyter Server: `/api` (version, public), `/api/status`,
`/api/me`, `/api/spec.yaml`, `/api/resolvePath`, the CSP report endpoint and `/api/shutdown`."""

from __future__ import annotations

import getpass
import json
import logging
import os
from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request

from .. import __version__
from ..clock import isoformat, parse_isoformat
from ..errors import APIError
from ..state import state
from ..stores.base import StoreError, normalize_path
from .auth import public, xsrf_exempt

bp = Blueprint("api", __name__, url_prefix="/api")

log = logging.getLogger(__name__)

CSP_REPORT_LOGGED = 2000  # characters of a report kept in the log: enough to act on, bounded


@bp.get("", strict_slashes=False)
@public
def version() -> Response:
    return jsonify(version=__version__)


def record_activity(response: Response) -> Response:
    """API use by a logged-in client is activity (/api/status reports its last time);
    polling /api/status is not (as in Jupyter)."""
    if g.get("user") and request.path.startswith("/api/") and request.endpoint != "api.status":
        state().touch()
    return response


@bp.get("/status")
def status() -> Response:
    server = state()
    kernels = server.host.counts()
    last_activity = server.last_activity
    if kernels.get("last_activity"):
        last_activity = max(last_activity, parse_isoformat(kernels["last_activity"]))
    return jsonify(
        started=isoformat(server.started),
        last_activity=isoformat(last_activity),
        kernels=kernels["kernels"],
        connections=kernels["connections"],
    )


def identity() -> dict[str, Any]:
    """The one user of this server, the account that runs it, in Jupyter's identity model.

    Jupyter invents an "Anonymous <moon>" per browser for token logins; a single-owner server
    has one user, so every client sees the same, stable identity.
    """
    try:
        username = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        username = f"uid{os.getuid()}"
    initials = "".join(word[0] for word in username.replace(".", " ").replace("_", " ").split())[:2]
    return {
        "username": username,
        "name": username,
        "display_name": username,
        "initials": initials.upper() or None,
        "avatar_url": None,
        "color": None,
    }


def requested_permissions(raw: str) -> dict[str, list[str]]:
    """`?permissions=` as Jupyter takes it: a JSON object of resource -> list of actions."""
    if not raw:
        return {}
    problem = f'permissions should be a JSON dict of {{"resource": ["action",]}}, got {raw!r}'
    try:
        wanted = json.loads(raw)
    except (ValueError, RecursionError):
        raise APIError(400, problem) from None
    if not isinstance(wanted, dict) or not all(
        isinstance(actions, list) and all(isinstance(action, str) for action in actions)
        for actions in wanted.values()
    ):
        raise APIError(400, problem)
    return wanted


@bp.get("/me")
def me() -> Response:
    """Who is logged in, and which of the asked-for actions they may take: all of them, since
    the owner may do anything. No field can be changed here (no PATCH), hence
    `updatable_fields` is empty."""
    permissions: dict[str, Any] = dict(requested_permissions(request.args.get("permissions", "")))
    permissions["updatable_fields"] = []
    return jsonify(identity=identity(), permissions=permissions)


@bp.route("/spec.yaml", methods=["GET", "HEAD"])
def spec() -> Response:
    """The OpenAPI (Swagger 2.0) description of this server's API, as Jupyter serves its own."""
    return Response(render_template("api.yaml", version=__version__), mimetype="text/x-yaml")


def server_path(path: str) -> str | None:
    """`path` as an API path of the store, if it names something there (Jupyter's server scope).

    Like Jupyter, a path may be given relative to the root (a leading `/` is dropped) or, for
    the file store, as an absolute OS path inside the root folder. Hidden paths resolve only
    with allow_hidden.
    """
    settings = state().settings.store
    if settings.class_name == "file" and os.path.isabs(path):
        root = os.path.realpath(os.path.expanduser(settings.root_dir))
        absolute = os.path.abspath(path)
        if absolute == root or absolute.startswith(root + os.sep):
            path = os.path.relpath(absolute, root)
    try:
        api_path = normalize_path(path)
        found = state().store.exists(api_path)
    except StoreError:
        return None
    if not found or state().contents.hidden(api_path):
        return None
    return api_path


@bp.get("/resolvePath")
def resolve_path() -> Response:
    """Where a path (from a kernel's traceback, a terminal...) is, as Jupyter answers it.

    The server scope is resolved against the store. A `kernel` that does not exist is listed
    under `unresolved`, as in Jupyter; an existing kernel's scope is never resolved, because
    the kernel host does not report kernels' working folders.
    """
    path = request.args.get("path")
    if path is None:
        raise APIError(400, "Missing argument path")
    answer: dict[str, Any] = {"resolved": []}
    found = server_path(path)
    if found is not None:
        answer["resolved"].append({"scope": "server", "path": found})
    kernel_id = request.args.get("kernel")
    if kernel_id:
        try:
            state().host.get_kernel(kernel_id)
        except APIError as error:
            if error.status != 404:
                raise
            answer["unresolved"] = [{"scope": "kernel", "reason": f"Kernel {kernel_id} could not be found"}]
    return jsonify(answer)


@bp.post("/security/csp-report")
@xsrf_exempt
def csp_report() -> Response:
    """Browsers post Content-Security-Policy violations here: log them, answer 200 empty.

    No XSRF token is asked for (the browser sends the report itself, with cookies but no
    header we could add), as in Jupyter; the body is logged whatever it holds, shortened.
    """
    body = request.get_data(cache=False).decode("utf-8", "replace")
    shown = body[:CSP_REPORT_LOGGED].translate({c: " " for c in range(32)})
    log.warning("Content security violation: %s%s", shown, " ..." if len(body) > CSP_REPORT_LOGGED else "")
    return Response(status=200, mimetype="application/json")


@bp.post("/shutdown")
def shutdown() -> Response:
    """JupyterLab's File > Shut Down. A server that may be one of many gunicorn workers, or
    serve a whole team, is not stopped by one browser: it says how to stop it instead."""
    raise APIError(403, "Shutting the server down from the browser is off: run `nbflask stop` where it runs",
                   "Forbidden")
