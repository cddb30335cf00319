"""`/api/sessions`: which notebook uses which kernel, kept by the kernel host for every worker."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, url_for

from ..errors import APIError
from ..state import state
from .kernels import json_body, optional_string

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


@bp.get("", strict_slashes=False)
def list_sessions() -> Response:
    return jsonify(state().kernels.list_sessions())


@bp.post("", strict_slashes=False)
def create_session() -> tuple[Response, int, dict[str, str]]:
    body = json_body()
    path = optional_string(body, "path") or optional_string(body.get("notebook") or {}, "path")
    if not path:
        raise APIError(400, "Session needs a 'path'", "Bad Request")
    model = state().kernels.create_session(
        path=path,
        name=optional_string(body, "name") or "",
        type=optional_string(body, "type") or "notebook",
        kernel=kernel_request(body, required=True),
    )
    return jsonify(model), 201, {"Location": url_for(".get_session", session_id=model["id"])}


@bp.get("/<session_id>")
def get_session(session_id: str) -> Response:
    return jsonify(state().kernels.get_session(session_id))


@bp.patch("/<session_id>")
def update_session(session_id: str) -> Response:
    body = json_body()
    changes: dict[str, Any] = {
        key: optional_string(body, key) for key in ("path", "name", "type") if key in body
    }
    changes["kernel"] = kernel_request(body, required=False)
    return jsonify(state().kernels.update_session(session_id, changes))


@bp.delete("/<session_id>")
def delete_session(session_id: str) -> tuple[str, int]:
    state().kernels.delete_session(session_id)
    return "", 204
