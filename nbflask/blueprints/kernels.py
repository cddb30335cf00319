"""`/api/kernels`: list, start, get, delete, interrupt, restart, and the channels websocket."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, url_for

from .. import websocket
from ..protocol import wire
from ..relays.kernel import Relay
from ..state import state
from . import upgrade
from .bodies import json_body, optional_string

bp = Blueprint("kernels", __name__, url_prefix="/api/kernels")


@bp.get("", strict_slashes=False)
def list_kernels() -> Response:
    return jsonify(state().host.list_kernels())


@bp.post("", strict_slashes=False)
def start_kernel() -> tuple[Response, int, dict[str, str]]:
    body = json_body()
    model = state().host.start_kernel(
        name=optional_string(body, "name"), path=optional_string(body, "path"),
        kernel_id=optional_string(body, "kernel_id"),
    )
    return jsonify(model), 201, {"Location": url_for(".get_kernel", kernel_id=model["id"])}


@bp.get("/<kernel_id>")
def get_kernel(kernel_id: str) -> Response:
    return jsonify(state().host.get_kernel(kernel_id))


@bp.delete("/<kernel_id>")
def delete_kernel(kernel_id: str) -> tuple[str, int]:
    state().host.shutdown_kernel(kernel_id)
    return "", 204


@bp.post("/<kernel_id>/interrupt")
def interrupt_kernel(kernel_id: str) -> tuple[str, int]:
    state().host.interrupt_kernel(kernel_id)
    return "", 204


@bp.post("/<kernel_id>/restart")
def restart_kernel(kernel_id: str) -> Response:
    return jsonify(state().host.restart_kernel(kernel_id))


@bp.route("/<kernel_id>/channels", websocket=True)
def channels(kernel_id: str) -> Response:
    server = state()
    connection = server.host.connection_info(kernel_id)
    session_id = request.args.get("session_id", "")
    kernels = server.settings.kernels
    linger = kernels.replay_buffer_age if kernels.replay_buffer_bytes > 0 else 0  # replies kept as long

    def relay(ws: websocket.Websocket) -> None:
        link = Relay(ws, host=server.host, kernel_id=kernel_id, session_id=session_id,
                     connection=connection, linger=linger)
        link.run()

    return upgrade.serve(relay, subprotocols=[wire.V1_SUBPROTOCOL],
                         send_buffer=server.settings.kernel_send_buffer)  # what the replay keeps

