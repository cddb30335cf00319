"""Errors into answers, for every route: Jupyter's JSON `{"message", "reason"}` with the
right status for the API, our error page for browsers, never a traceback.

The layers below the blueprints know nothing of HTTP: a store raises its kind of failure
(`nbflask.stores.base`), and `STORE_STATUS` here says which status each kind answers with.
The factory (`nbflask.app`) registers the handlers of `HANDLERS` for the whole app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge
from werkzeug.routing import WebsocketMismatch

from .api_error import APIError
from .stores.base import (
    AlreadyExists,
    BadContent,
    Conflict,
    InvalidPath,
    NotEmpty,
    NotFound,
    PermissionDenied,
    StoreError,
    StoreFull,
    TimedOut,
    Unavailable,
)

__all__ = ["HANDLERS", "STORE_STATUS", "APIError", "json_error", "store_status"]

log = logging.getLogger(__name__)

#: The status each kind of store failure answers with, as Jupyter Server answers it. A store's
#: own subclass answers as the nearest class listed here (StoreError itself: 500).
STORE_STATUS: dict[type[StoreError], int] = {
    StoreError: 500,
    NotFound: 404,
    InvalidPath: 400,
    BadContent: 400,
    NotEmpty: 400,  # a directory that still holds entries, where Jupyter answers 400
    AlreadyExists: 409,
    Conflict: 412,  # the entry changed since the version the client named (If-Match)
    PermissionDenied: 403,
    Unavailable: 503,  # the backing service is down or failing
    TimedOut: 504,
    StoreFull: 507,  # quota or disk full
}


def store_status(error: StoreError) -> int:
    """The HTTP status of a store's failure."""
    return next(STORE_STATUS[kind] for kind in type(error).__mro__ if kind in STORE_STATUS)


def json_error(status: int, message: str, reason: str | None = None) -> Response:
    """A Jupyter-style error response; `reason` defaults to the HTTP reason phrase."""
    response = jsonify(message=message, reason=reason)
    response.status_code = status
    return response


def html_error(error: HTTPException) -> Response | HTTPException:
    """Our error page for browsers (redirects and bodiless answers pass through as they are)."""
    code = error.code or 500
    if code < 400 or request.method == "HEAD":
        return error
    html = render_template("error.html", code=code, name=error.name, description=error.description)
    return _with_headers_of(error, Response(html, status=code, mimetype="text/html"))


def _with_headers_of(error: HTTPException, response: Response) -> Response:
    """Keep what the error says besides its body (Allow on 405, Retry-After, ...)."""
    for key, value in error.get_headers():
        if key.lower() not in ("content-type", "content-length"):
            response.headers[key] = value
    return response


def _wants_json() -> bool:
    path = request.path
    api = path == "/api" or path.startswith(("/api/", "/lab/api/"))
    return api or request.accept_mimetypes.best == "application/json"


def api_error(error: APIError) -> Response:
    """An error raised with its status by any layer, the kernel host's refusals included."""
    return json_error(error.status, error.message, error.reason)


def store_error(error: StoreError) -> Response:
    """The store's failure as JSON, on every route (contents, downloads, the front-ends'
    state kept in a shared store...). Expected refusals (4xx) are the client's business and
    are not logged; a failing backend (5xx: Swift down, disk full) gets one line, no traceback."""
    status = store_status(error)
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.path, error.message)
    return json_error(status, error.message, error.reason)


def too_large(error: RequestEntityTooLarge) -> Response:
    """A body over server.max_body_size, on any route: JSON naming the limit."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    return json_error(
        413, f"Request body too large: the limit is {limit} bytes (server.max_body_size)", "too large"
    )


def websocket_mismatch(error: WebsocketMismatch) -> Response:
    """Werkzeug's test for an upgrade; when it fails on a websocket route, the commonest
    cause is a proxy that drops Upgrade and Connection: say what is missing."""
    environ = request.environ
    upgrading = (environ.get("HTTP_UPGRADE", "").lower() == "websocket"
                 and "upgrade" in environ.get("HTTP_CONNECTION", "").lower())
    if upgrading:
        return json_error(400, "This endpoint does not accept websocket upgrades", "Bad Request")
    return json_error(400, "This endpoint only accepts websocket upgrades; the request came"
                      " without 'Upgrade: websocket' and 'Connection: Upgrade' (a proxy in between"
                      " may drop them)", "Bad Request")


def http_error(error: HTTPException) -> Response | HTTPException:
    """Werkzeug's errors (404, 405, ...): JSON for the API and clients asking for it, our
    page for browsers."""
    if not _wants_json():
        return html_error(error)
    return _with_headers_of(error, json_error(error.code or 500, error.description or error.name, None))


def too_deep(error: RecursionError) -> Response:
    """Data nested deeper than Python's recursion limit (a JSON body thousands of levels
    deep, a notebook whose metadata nests hundreds) is the client's doing: say so."""
    log.warning("%s %s: request data nested too deeply (%s)", request.method, request.path, error)
    return json_error(400, "Request data is nested too deeply", "bad json")


def unexpected(error: Exception) -> Response | HTTPException:
    """A bug: its traceback goes to the log, never to the client."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    if not _wants_json():
        return html_error(InternalServerError())
    return json_error(500, "Internal server error: see the server log", type(error).__name__)


#: The app's error handlers. Flask picks the one registered for the most specific class of
#: the error (a status code's first), so their order does not matter.
HANDLERS: dict[type[Exception], Callable[..., Response | HTTPException]] = {
    APIError: api_error,
    StoreError: store_error,
    RequestEntityTooLarge: too_large,
    WebsocketMismatch: websocket_mismatch,
    HTTPException: http_error,
    RecursionError: too_deep,
    Exception: unexpected,
}
