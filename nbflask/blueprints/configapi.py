"""`/api/config/<section>`: the front-ends' small per-user config documents (GET, PUT, PATCH)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..frontend.configsections import MAX_CONFIG_BYTES
from ..state import state
from .bodies import json_object

bp = Blueprint("configapi", __name__, url_prefix="/api/config")

#: A body may spell a section longer than it is saved (spaces, escapes); what is saved is
#: checked against MAX_CONFIG_BYTES.
BODY_LIMIT = 2 * MAX_CONFIG_BYTES + 1024


@bp.get("/<section>")
def get_section(section: str) -> Response:
    return jsonify(state().frontends.config.get(section))


@bp.put("/<section>")
def put_section(section: str) -> tuple[str, int]:
    state().frontends.config.replace(section, section_body())
    return "", 204


@bp.patch("/<section>")
def patch_section(section: str) -> Response:
    return jsonify(state().frontends.config.update(section, section_body()))


def section_body() -> dict:
    return json_object(max_bytes=BODY_LIMIT, what="Config request body") or {}
