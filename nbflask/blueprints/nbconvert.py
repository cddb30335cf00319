"""`/api/nbconvert` (the export formats) and `/nbconvert/<format>/<path>` (one export).

An export (HTML above all) carries the notebook's outputs, scripts included; it is served
under the same sandbox as `/files/` so it cannot script this origin.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..frontend import export
from .contents import contents
from .files import SANDBOX, attachment

bp = Blueprint("nbconvert", __name__)


@bp.get("/api/nbconvert", strict_slashes=False)
def formats() -> Response:
    return jsonify(export.formats())


@bp.get("/nbconvert/<format>/<path:path>")
def convert(format: str, path: str) -> Response:
    model = contents().get(path, type="notebook").model
    result = export.export(model["content"], model["path"], format)
    response = Response(result.body, mimetype=result.mimetype)
    response.headers["Content-Security-Policy"] = SANDBOX
    response.headers["Cache-Control"] = "private, no-cache"
    if request.args.get("download", "false").lower() not in ("", "0", "false"):
        response.headers["Content-Disposition"] = attachment(result.filename)
    return response
