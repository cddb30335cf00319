"""Websocket endpoints' common HTTP part: accept the upgrade with the deployment's websocket
settings, run the view's handler on the websocket, and end the HTTP exchange the way the
server in use expects after an upgrade. Kernel channels, terminals and the event stream probe
use it alike; auth, Host and Origin were already checked by the gate (blueprints/auth.py), and
a plain request never reaches their views (errors.py answers it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request

from .. import websocket
from ..state import state


def serve(handler: Callable[[websocket.Websocket], None], subprotocols: list[str] | None = None,
          send_buffer: int | None = None, *, compression: bool | None = None,
          max_message_size: int | None = None) -> Response:
    """Accept this request's websocket and run `handler` on it until it returns; its client is
    closed as too slow past `send_buffer` unread bytes (default server.websocket_send_buffer).
    `compression` and `max_message_size` default to server.websocket_compression and
    server.max_body_size."""
    settings = state().settings
    mode = websocket.run(
        request.environ, handler, subprotocols=subprotocols or [],
        compression=settings.server.websocket_compression if compression is None else compression,
        ping_interval=settings.kernels.ping_interval,
        max_message_size=max_message_size or settings.server.max_body_size,
        send_buffer=send_buffer or settings.server.websocket_send_buffer,
    )
    return _AfterUpgrade(mode)


class _AfterUpgrade(Response):
    """The response once the connection has been upgraded: nothing more may be written."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        if self.mode == "gunicorn":
            raise StopIteration()
        if self.mode == "werkzeug":
            return super().__call__(environ, start_response)
        return []
