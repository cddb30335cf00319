"""Services JupyterLab and Notebook 7 look for at start that nbflask does not offer.

Answering "nothing here" the way the real services would keeps the pages quiet: without
these the page retries the event stream websocket forever and logs a 404 for the language
server status on every load.

- `/api/events/subscribe`: Jupyter Server's event bus. The websocket is accepted and stays
  open; nbflask emits no events on it (none of the pages' features needs one).
- `/lsp/status`: jupyter-lsp's status; no language servers are configured.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from .. import websocket
from . import upgrade

bp = Blueprint("probes", __name__)


@bp.route("/api/events/subscribe", websocket=True)
def events() -> Response:
    def listen(ws: websocket.Websocket) -> None:
        while ws.receive() is not None:
            pass

    return upgrade.serve(listen, compression=False, max_message_size=64 * 1024)


@bp.get("/lsp/status")
def lsp_status() -> Response:
    return jsonify(version=2, sessions={}, specs={})
