"""`/api/config/<section>`: the front-ends' small per-user config documents (GET, PUT, PATCH)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..state import state
from .bodies import json_object

bp = Blueprint("configapi", __name__, url_prefix="/api/config")


@bp.get("/<section>")
def get_section(section: str) -> Response:
    return jsonify(state().frontends.config.get(section))


@bp.put("/<section>")
def put_section(section: str) -> tuple[str, int]:
    state().frontends.config.replace(section, json_object() or {})
    return "", 204


@bp.patch("/<section>")
def patch_section(section: str) -> Response:
    return jsonify(state().frontends.config.update(section, json_object() or {}))
