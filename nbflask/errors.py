"""JSON errors for the API: `{"message", "reason"}` with the right status, never a traceback."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import WebsocketMismatch

from .api_error import APIError

__all__ = ["APIError", "init_app", "json_error"]

log = logging.getLogger(__name__)


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


def init_app(app: Flask) -> None:
    @app.errorhandler(APIError)
    def handle_api_error(error: APIError) -> Response:
        return json_error(error.status, error.message, error.reason)

    @app.errorhandler(WebsocketMismatch)
    def handle_websocket_mismatch(error: WebsocketMismatch) -> Response:
        # Werkzeug's test for an upgrade; when it fails on a websocket route, the commonest
        # cause is a proxy that drops Upgrade and Connection: say what is missing.
        environ = request.environ
        upgrading = (environ.get("HTTP_UPGRADE", "").lower() == "websocket"
                     and "upgrade" in environ.get("HTTP_CONNECTION", "").lower())
        if upgrading:
            return json_error(400, "This endpoint does not accept websocket upgrades", "Bad Request")
        return json_error(400, "This endpoint only accepts websocket upgrades; the request came"
                          " without 'Upgrade: websocket' and 'Connection: Upgrade' (a proxy in between"
                          " may drop them)", "Bad Request")

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException) -> Response | HTTPException:
        if not _wants_json():
            return html_error(error)
        return _with_headers_of(error, json_error(error.code or 500, error.description or error.name, None))

    @app.errorhandler(RecursionError)
    def handle_too_deep(error: RecursionError) -> Response:
        # Data nested deeper than Python's recursion limit (a JSON body thousands of levels
        # deep, a notebook whose metadata nests hundreds) is the client's doing: say so.
        log.warning("%s %s: request data nested too deeply (%s)", request.method, request.path, error)
        return json_error(400, "Request data is nested too deeply", "bad json")

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response | HTTPException:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not _wants_json():
            return html_error(InternalServerError())
        return json_error(500, "Internal server error: see the server log", type(error).__name__)
