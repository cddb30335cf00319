"""`/lab/api/...`: what JupyterLab and Notebook 7 both call besides the Jupyter Server API.

Settings (schemas plus the user's JSON5 overrides), translations (English only: no language
packs are installed), listings (no allow/block lists), workspaces, and the third-party
licenses report.
The logic is in `nbflask.frontend`; this module only speaks HTTP.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request

from ..blocking import run_blocking
from ..errors import APIError
from ..frontend import licenses
from ..frontend.service import FrontendService
from ..frontend.settings import MAX_SETTINGS_BODY
from ..frontend.workspaces import MAX_WORKSPACE_BYTES
from ..state import state
from .bodies import json_object

bp = Blueprint("labapi", __name__, url_prefix="/lab/api")

#: A body may spell a workspace longer than it is saved; what is saved is checked against
#: MAX_WORKSPACE_BYTES.
WORKSPACE_BODY = 2 * MAX_WORKSPACE_BYTES + 1024

ENGLISH = {"en": {"displayName": "English", "nativeName": "English"}}


def frontends() -> FrontendService:
    return state().frontends


@bp.get("/settings", strict_slashes=False)
def list_settings() -> Response:
    registry = frontends().settings
    if request.args.get("ids_only", "").lower() in ("1", "true"):
        return jsonify(settings=[{"id": plugin_id} for plugin_id in registry.ids()])
    return jsonify(settings=registry.list())


@bp.get("/settings/<path:plugin_id>")
def get_setting(plugin_id: str) -> Response:
    return jsonify(frontends().settings.get(plugin_id))


@bp.put("/settings/<path:plugin_id>")
def put_setting(plugin_id: str) -> tuple[str, int]:
    body = json_object(max_bytes=MAX_SETTINGS_BODY, what="Settings request body") or {}
    raw = body.get("raw")
    if not isinstance(raw, str):
        raise APIError(400, "expected a JSON object with the settings text in 'raw'", "bad json")
    frontends().settings.save(plugin_id, raw)
    return "", 204


@bp.get("/translations", strict_slashes=False)
def languages() -> Response:
    return jsonify(data=ENGLISH, message="")


@bp.get("/translations/<locale>")
def language_pack(locale: str) -> Response:
    message = "" if locale in ENGLISH else f"Language pack '{locale}' not installed!"
    return jsonify(data={}, message=message)


@bp.get("/listings/<path:name>")
def listings(name: str) -> Response:
    return jsonify(blocked_extensions_uris=[], allowed_extensions_uris=[], blocked_extensions=[],
                   allowed_extensions=[])


@bp.get("/workspaces", strict_slashes=False)
def list_workspaces() -> Response:
    return jsonify(workspaces=frontends().workspaces.list())


@bp.get("/workspaces/<name>")
def get_workspace(name: str) -> Response:
    return jsonify(frontends().workspaces.get(name))


@bp.put("/workspaces/<name>")
def put_workspace(name: str) -> tuple[str, int]:
    frontends().workspaces.save(name, json_object(max_bytes=WORKSPACE_BODY, what="Workspace request body"))
    return "", 204


@bp.delete("/workspaces/<name>")
def delete_workspace(name: str) -> tuple[str, int]:
    frontends().workspaces.delete(name)
    return "", 204


def flag(name: str, default: str) -> bool:
    """A true/false query argument, JSON-spelled as jupyterlab_server reads it (`1`, `true`)."""
    value = request.args.get(name, default)
    try:
        return bool(json.loads(value))
    except ValueError:
        raise APIError(400, f"{name}: expected true, false, 1 or 0, found {value!r}", "Bad Request") from None


@bp.get("/licenses", strict_slashes=False)
def third_party_licenses() -> Response:
    """Help > Licenses: `?format=json|csv|markdown&full_text=&bundles=<regex>&download=`, as
    jupyterlab_server answers it; `download=1` makes it a file (jupyterlab-licenses.csv)."""
    report_format = request.args.get("format", "json")
    full_text, download = flag("full_text", "true"), flag("download", "0")
    text, mimetype = run_blocking(licenses.report, frontends().builds, report_format,
                                  request.args.get("bundles", ".*"), full_text)
    response = Response(text, mimetype=mimetype)
    if download:
        extension = licenses.FORMATS[report_format][1]
        response.headers.set("Content-Disposition", "attachment", filename=f"jupyterlab-licenses{extension}")
    return response
