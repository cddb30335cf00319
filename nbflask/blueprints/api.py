"""`/api` (version, public) and `/api/status`, as in the Jupyter Server REST API."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from .. import __version__
from ..app import state
from .auth import public

bp = Blueprint("api", __name__, url_prefix="/api")


def isoformat(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@bp.get("", strict_slashes=False)
@public
def version() -> Response:
    return jsonify(version=__version__)


@bp.get("/status")
def status() -> Response:
    server = state()
    kernels = server.kernels.counts() if server.kernels is not None else {"kernels": 0, "connections": 0}
    return jsonify(
        started=isoformat(server.started),
        last_activity=isoformat(server.last_activity),
        kernels=kernels["kernels"],
        connections=kernels["connections"],
    )
