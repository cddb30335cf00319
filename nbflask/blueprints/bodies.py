"""Request bodies: the JSON object an API call sends, or a 400 saying what is wrong with it,
and the fields the kernels, sessions and terminals APIs read from it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import request

from ..blocking import run_blocking_if
from ..errors import APIError

#: Bodies at least this long are parsed in gevent's thread pool. Below it the hand-off costs
#: more than the parse (a 64 KiB body parses in about a millisecond).
PARSE_IN_THREAD_BYTES = 64 * 1024


def json_object(
    object_hook: Callable[[dict[str, Any]], Any] | None = None, *, max_bytes: int | None = None,
    what: str = "Request body",
) -> dict[str, Any] | None:
    """The request's JSON object, None when the body is empty; 400 for anything else.

    The raw body is not cached, so a large notebook is held once as bytes, then as objects;
    `object_hook` makes each JSON object what the service works on while it is parsed. A
    large body is parsed off the gevent loop, so its seconds of parsing (a notebook's hook
    runs in Python for each object) stall no other client. `max_bytes`: a limit below
    server.max_body_size for this kind of body; more is 413 naming `what`, before any parsing.
    """
    data = _body(max_bytes, what)
    if not data.strip():
        return None
    return run_blocking_if(len(data) >= PARSE_IN_THREAD_BYTES, _parse, data, object_hook)


def json_body() -> dict[str, Any]:
    """The JSON object sent, `{}` for an empty body (Jupyter clients may send none)."""
    return json_object() or {}


def optional_string(body: dict[str, Any], key: str) -> str | None:
    """`body[key]` if it is a string, None if it is missing or null; 400 for anything else."""
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise APIError(400, f"'{key}' must be a string", "Bad Request")
    return value


def _body(max_bytes: int | None, what: str) -> bytes:
    """The body, refused (413) before it is read when it announces more than `max_bytes`, and
    once `max_bytes` + 1 of a chunked one are read (not the whole of it, up to max_body_size)."""
    if max_bytes is None:
        return request.get_data(cache=False)
    if (request.content_length or 0) > max_bytes:
        raise _too_large(max_bytes, what)
    data = _read_at_most(max_bytes + 1)  # a chunked body says no length first
    if len(data) > max_bytes:
        raise _too_large(max_bytes, what)  # the rest is never read: the server closes after the 413
    return data


def _read_at_most(limit: int) -> bytes:
    """Up to `limit` bytes of the body, reading no further (a stream may return less per read)."""
    pieces: list[bytes] = []
    left = limit
    while left > 0:
        piece = request.stream.read(left)
        if not piece:
            break
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def _too_large(max_bytes: int, what: str) -> APIError:
    return APIError(413, f"{what} too large: the limit is {max_bytes} bytes", "too large")


def _parse(data: bytes, object_hook: Callable[[dict[str, Any]], Any] | None) -> dict[str, Any]:
    try:
        body = json.loads(data, object_hook=object_hook)
    except ValueError as exc:
        raise APIError(400, f"Invalid JSON in request body: {exc}", "bad json") from None
    except RecursionError:
        raise APIError(400, "Invalid JSON in request body: nested too deeply", "bad json") from None
    if not isinstance(body, dict):  # an object_hook makes dicts
        raise APIError(400, "Request body must be a JSON object", "bad json")
    return body
