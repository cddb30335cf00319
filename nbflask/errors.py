"""JSON errors for the API: `{"message", "reason"}` with the right status, never a traceback."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from .api_error import APIError

__all__ = ["APIError", "init_app", "json_error"]

log = logging.getLogger(__name__)


def json_error(status: int, message: str, reason: str | None = None) -> Response:
    """A Jupyter-style error response; `reason` defaults to the HTTP reason phrase."""
    response = jsonify(message=message, reason=reason)
    response.status_code = status
    return response


def _wants_json() -> bool:
    path = request.path
    api = path == "/api" or path.startswith(("/api/", "/lab/api/"))
    return api or request.accept_mimetypes.best == "application/json"


def init_app(app: Flask) -> None:
    @app.errorhandler(APIError)
    def handle_api_error(error: APIError) -> Response:
        return json_error(error.status, error.message, error.reason)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException) -> Response | HTTPException:
        if not _wants_json():
            return error
        response = json_error(error.code or 500, error.description or error.name, None)
        for key, value in error.get_headers():
            if key.lower() not in ("content-type", "content-length"):
                response.headers[key] = value
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response | HTTPException:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not _wants_json():
            return InternalServerError()
        return json_error(500, "Internal server error: see the server log", type(error).__name__)
