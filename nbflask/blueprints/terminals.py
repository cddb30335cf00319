"""`/api/terminals` (list, create, get, delete), the terminal websocket
`/terminals/websocket/<name>`, and Notebook 7's terminal page `/terminals/<name>`.

Registered only while `terminals.enabled`: with terminals off, none of these routes exists
(404), as in Jupyter Server. The terminals themselves live in the kernel host.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from .. import websocket
from ..relays.terminal import TerminalRelay
from ..state import state
from . import upgrade
from .bodies import json_object, optional_string
from .pages import render_page

bp = Blueprint("terminals", __name__)


@bp.get("/api/terminals", strict_slashes=False)
def list_terminals() -> Response:
    return jsonify(state().host.list_terminals())


@bp.post("/api/terminals", strict_slashes=False)
def create_terminal() -> Response:
    """Jupyter answers 200 (not 201) with the new terminal's model."""
    body = json_object() or {}
    return jsonify(state().host.create_terminal(
        name=optional_string(body, "name"), cwd=optional_string(body, "cwd")))


@bp.get("/api/terminals/<terminal_name>")
def get_terminal(terminal_name: str) -> Response:
    return jsonify(state().host.get_terminal(terminal_name))


@bp.delete("/api/terminals/<terminal_name>")
def delete_terminal(terminal_name: str) -> tuple[str, int]:
    state().host.delete_terminal(terminal_name)
    return "", 204


@bp.route("/terminals/websocket/<name>", websocket=True)
def terminal_websocket(name: str) -> Response:
    host = state().host
    host.get_terminal(name)  # an unknown terminal is a 404 before the upgrade

    def relay(ws: websocket.Websocket) -> None:
        TerminalRelay(ws, host=host, name=name,
                      input_buffer=state().settings.terminals.input_buffer_bytes).run()

    return upgrade.serve(relay)


@bp.get("/terminals/<name>")
def terminal_page(name: str) -> Response:
    """Notebook 7's page for one terminal: its New > Terminal creates a terminal, then opens
    this page on it."""
    return render_page("notebook", f"Terminal {name}", notebook_page="terminals")
