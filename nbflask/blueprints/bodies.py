"""Request bodies: the JSON object an API call sends, or a 400 saying what is wrong with it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import request

from ..errors import APIError


def json_object(object_hook: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any] | None:
    """The request's JSON object, None when the body is empty; 400 for anything else.

    The raw body is not cached, so a large notebook is held once as bytes, then as objects;
    `object_hook` makes each JSON object what the service works on while it is parsed.
    """
    data = request.get_data(cache=False)
    if not data.strip():
        return None
    try:
        body = json.loads(data, object_hook=object_hook)
    except ValueError as exc:
        raise APIError(400, f"Invalid JSON in request body: {exc}", "bad json") from None
    except RecursionError:
        raise APIError(400, "Invalid JSON in request body: nested too deeply", "bad json") from None
    if not isinstance(body, dict):  # an object_hook makes dicts
        raise APIError(400, "Request body must be a JSON object", "bad json")
    return body
