"""Websocket endpoints' common HTTP part: accept the upgrade with the deployment's websocket
settings. Kernel channels and terminals use it alike; auth, Host and Origin were already
checked by the gate (blueprints/auth.py), and a plain request never reaches their views
(errors.py answers it)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, request

from .. import websocket
from ..state import state


def serve(handler: Callable[[websocket.Websocket], None], subprotocols: list[str] | None = None,
          send_buffer: int | None = None) -> Response:
    """Accept this request's websocket and run `handler` on it until it returns; its client is
    closed as too slow past `send_buffer` unread bytes (default server.websocket_send_buffer)."""
    settings = state().settings
    return websocket.serve(
        request.environ, handler, subprotocols=subprotocols or [],
        compression=settings.server.websocket_compression,
        ping_interval=settings.kernels.ping_interval,
        max_message_size=settings.server.max_body_size,
        send_buffer=send_buffer or settings.server.websocket_send_buffer,
    )
