"""`/api/contents/<path>`: the Jupyter Server contents API, HTTP only.

Each view parses the request (query, JSON body, If-Match), calls the contents service and
writes its model with the headers Jupyter clients expect (Location, Last-Modified) plus an
ETag, so a client that sends If-Match gets 412 instead of overwriting someone else's save.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, request, url_for

from .. import jsontext
from ..blocking import run_blocking
from ..contents import Contents, IfMatch, Reply, notebooks
from ..contents.service import MANY_ENTRIES
from ..errors import APIError
from ..state import state
from .bodies import json_object

bp = Blueprint("contents", __name__, url_prefix="/api/contents")

METHODS = ["GET", "PUT", "POST", "PATCH", "DELETE"]
STREAM_CHUNK = 1 << 20


def contents() -> Contents:
    """The contents service of the current app (also used by the /files/ blueprint)."""
    return state().contents


# -- request parsing -------------------------------------------------------------------
def if_match() -> IfMatch:
    """A predicate for the client's If-Match header (strong comparison), None without one."""
    if "If-Match" not in request.headers:
        return None
    return request.if_match.contains


def flag(name: str, default: str) -> bool:
    value = request.args.get(name, default)
    if value not in ("0", "1"):
        raise APIError(400, f"{name.capitalize()} {value!r} is invalid; use 0 or 1")
    return value == "1"


def model_url(path: str) -> str:
    return url_for("contents.contents_view", path=path)


def encoded(chunks: list[str]) -> Iterator[bytes]:
    """Encode a large ASCII JSON text chunk by chunk instead of into one more full copy."""
    while chunks:
        yield chunks.pop(0).encode("ascii")


def is_large(model: dict[str, Any]) -> bool:
    """Whether a model's JSON takes long enough to make (10 ms a MB) to be made off the loop."""
    content = model.get("content")
    if isinstance(content, list):
        return len(content) >= MANY_ENTRIES
    return content is not None and (model.get("size") or 0) >= STREAM_CHUNK


def model_response(reply: Reply, status: int = 200, location: bool = False) -> Response:
    """The model as compact JSON, with ETag and Last-Modified headers.

    `ensure_ascii` keeps the text ASCII, so its length is its byte length and a large model
    streams out in encoded chunks while only the text is held whole. A large one is made in
    a pool thread in pieces (jsontext.py), so the loop serves other clients meanwhile.
    """
    if is_large(reply.model):
        chunks = run_blocking(jsontext.compact_chunks, reply.model, STREAM_CHUNK)
        response = Response(encoded(chunks), status=status, mimetype="application/json")
        response.content_length = sum(len(chunk) for chunk in chunks)
    else:
        response = Response(jsontext.compact(reply.model), status=status, mimetype="application/json")
    if reply.etag is not None:
        response.set_etag(reply.etag)
    response.last_modified = reply.last_modified
    if location:
        response.headers["Location"] = model_url(reply.model["path"])
    return response


# -- /api/contents/<path> --------------------------------------------------------------
@bp.route("", defaults={"path": ""}, methods=METHODS, strict_slashes=False)
@bp.route("/<path:path>", methods=METHODS)
def contents_view(path: str) -> Response:
    return VIEWS[request.method](path)


def get_model(path: str) -> Response:
    kind = request.args.get("type") or None
    if kind not in (None, "directory", "file", "notebook"):
        kind = "file"
    format = request.args.get("format") or None
    if format not in (None, "text", "base64"):
        raise APIError(400, f"Format {format!r} is invalid", "bad format")
    reply = contents().get(
        path, type=kind, format=format, content=flag("content", "1"), want_hash=flag("hash", "0")
    )
    return model_response(reply)


def put_model(path: str) -> Response:
    reply, created = contents().save(path, json_object(notebooks.Node), if_match())
    return model_response(reply, 201 if created else 200, location=True)


def post_model(path: str) -> Response:
    service = contents()
    body = json_object() or {}
    if body.get("copy_from"):
        reply = service.copy(str(body["copy_from"]), path)
    else:
        reply = service.new_untitled(path, str(body.get("type") or ""), str(body.get("ext") or ""))
    return model_response(reply, 201, location=True)


def patch_model(path: str) -> Response:
    body = json_object()
    if body is None:
        raise APIError(400, "JSON body missing")
    return model_response(contents().rename(path, body.get("path"), if_match()), location=True)


def delete_model(path: str) -> Response:
    contents().delete(path, if_match())
    return Response(status=204)


VIEWS = {"GET": get_model, "PUT": put_model, "POST": post_model, "PATCH": patch_model, "DELETE": delete_model}


# -- checkpoints and trust -------------------------------------------------------------
def checkpoint_url(path: str, checkpoint_id: str) -> str:
    return url_for("contents.checkpoint", path=path, checkpoint_id=checkpoint_id)


@bp.get("/<path:path>/checkpoints")
def list_checkpoints(path: str) -> Response:
    return Response(json.dumps(contents().list_checkpoints(path)), mimetype="application/json")


@bp.post("/<path:path>/checkpoints")
def create_checkpoint(path: str) -> Response:
    checkpoint = contents().create_checkpoint(path)
    response = Response(json.dumps(checkpoint), status=201, mimetype="application/json")
    response.headers["Location"] = checkpoint_url(path.strip("/"), checkpoint["id"])
    return response


@bp.route("/<path:path>/checkpoints/<checkpoint_id>", methods=["POST", "DELETE"])
def checkpoint(path: str, checkpoint_id: str) -> Response:
    if request.method == "POST":
        contents().restore_checkpoint(path, checkpoint_id)
    else:
        contents().delete_checkpoint(path, checkpoint_id)
    return Response(status=204)


@bp.post("/<path:path>/trust")
def trust(path: str) -> Response:
    contents().trust_notebook(path)
    return Response(status=201)
