"""`/api/sessions`: which notebook uses which kernel, kept by the kernel host for every worker.

Both POST and PATCH still accept the deprecated body `{"notebook": {"path": ...}}` of
Jupyter's older sessions API: as in Jupyter Server, its path wins and the type is `notebook`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, url_for

from ..errors import APIError
from ..state import state
from .bodies import json_body, json_object, optional_string

bp = Blueprint("sessions", __name__, url_prefix="/api/sessions")


def kernel_request(body: dict[str, Any], required: bool) -> dict[str, Any]:
    kernel = body.get("kernel")
    if kernel is None:
        if required:
            return {"name": None}
        return {}
    if not isinstance(kernel, dict) or any(
        value is not None and not isinstance(value, str) for value in (kernel.get("id"), kernel.get("name"))
    ):
        raise APIError(400, "'kernel' must be an object with a string 'id' or 'name'", "Bad Request")
    return {key: kernel[key] for key in ("id", "name") if kernel.get(key)}


def legacy_notebook_path(body: dict[str, Any]) -> str | None:
    """The path of a deprecated `{"notebook": {"path": ...}}` body, if it has one."""
    notebook = body.get("notebook")
    if notebook is None:
        return None
    if not isinstance(notebook, dict):
        raise APIError(400, "'notebook' must be an object with a string 'path'", "Bad Request")
    return optional_string(notebook, "path")


@bp.get("", strict_slashes=False)
def list_sessions() -> Response:
    return jsonify(state().host.list_sessions())


@bp.post("", strict_slashes=False)
def create_session() -> tuple[Response, int, dict[str, str]]:
    body = json_body()
    legacy_path = legacy_notebook_path(body)
    path = legacy_path or optional_string(body, "path")
    if not path:
        raise APIError(400, "Session needs a 'path'", "Bad Request")
    model = state().host.create_session(
        path=path,
        name=optional_string(body, "name") or "",
        type="notebook" if legacy_path else optional_string(body, "type") or "notebook",
        kernel=kernel_request(body, required=True),
    )
    return jsonify(model), 201, {"Location": url_for(".get_session", session_id=model["id"])}


@bp.get("/<session_id>")
def get_session(session_id: str) -> Response:
    return jsonify(state().host.get_session(session_id))


@bp.patch("/<session_id>")
def update_session(session_id: str) -> Response:
    body = json_object()
    if body is None:
        raise APIError(400, "No JSON data provided", "Bad Request")
    changes: dict[str, Any] = {
        key: optional_string(body, key) for key in ("path", "name", "type") if key in body
    }
    legacy_path = legacy_notebook_path(body)
    if legacy_path:
        changes.update(path=legacy_path, type="notebook")
    changes["kernel"] = kernel_request(body, required=False)
    return jsonify(state().host.update_session(session_id, changes))


@bp.delete("/<session_id>")
def delete_session(session_id: str) -> tuple[str, int]:
    state().host.delete_session(session_id)
    return "", 204
