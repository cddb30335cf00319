"""`/api` (version, public), `/api/status` and `/api/shutdown`, as in the Jupyter Server REST API."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from .. import __version__
from ..clock import isoformat, parse_isoformat
from ..errors import APIError
from ..state import state
from .auth import public

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("", strict_slashes=False)
@public
def version() -> Response:
    return jsonify(version=__version__)


@bp.after_app_request
def record_activity(response: Response) -> Response:
    """API use by a logged-in client is activity; polling /api/status is not (as in Jupyter)."""
    if g.get("user") and request.path.startswith("/api/") and request.endpoint != "api.status":
        state().touch()
    return response


@bp.get("/status")
def status() -> Response:
    server = state()
    kernels = server.kernels.counts()
    last_activity = server.last_activity
    if kernels.get("last_activity"):
        last_activity = max(last_activity, parse_isoformat(kernels["last_activity"]))
    return jsonify(
        started=isoformat(server.started),
        last_activity=isoformat(last_activity),
        kernels=kernels["kernels"],
        connections=kernels["connections"],
    )


@bp.post("/shutdown")
def shutdown() -> Response:
    """JupyterLab's File > Shut Down. A server that may be one of many gunicorn workers, or
    serve a whole team, is not stopped by one browser: it says how to stop it instead."""
    raise APIError(403, "Shutting the server down from the browser is off: run `nbflask stop` where it runs",
                   "Forbidden")
