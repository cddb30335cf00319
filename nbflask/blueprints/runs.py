"""`/api/kernels/<id>/execute` and `/api/kernels/<id>/runs`: cell runs without a websocket.

For scripts, and for clients behind proxies that break websockets: POST code, get 202 and the
run's URL, then poll it or follow it as server-sent events. Every run of a kernel is listed,
those from browsers too, so a page that comes back finds what its cells printed meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, request, stream_with_context, url_for

from ..errors import APIError
from ..state import state
from .bodies import json_object

bp = Blueprint("runs", __name__, url_prefix="/api/kernels/<kernel_id>")

STREAM_WAIT = 15.0  # seconds an events stream waits for a change before it sends a keep-alive


def string_field(body: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise APIError(400, f"'{key}' must be a string" + (" (the code to run)" if key == "code" else ""),
                       "Bad Request")
    return value


@bp.post("/execute")
def execute(kernel_id: str) -> tuple[Response, int, dict[str, str]]:
    body = json_object() or {}
    run = state().kernels.run_code(kernel_id, string_field(body, "code", required=True),  # type: ignore[arg-type]
                                   cell_id=string_field(body, "cell_id"), path=string_field(body, "path"))
    location = url_for(".get_run", kernel_id=kernel_id, run_id=run["id"])
    return jsonify(run), 202, {"Location": location}


@bp.get("/runs")
def list_runs(kernel_id: str) -> Response:
    return jsonify(state().kernels.list_runs(kernel_id, cell_id=request.args.get("cell_id")))


@bp.get("/runs/<run_id>")
def get_run(kernel_id: str, run_id: str) -> Response:
    return jsonify(state().kernels.get_run(kernel_id, run_id))


@bp.get("/runs/<run_id>/events")
def run_events(kernel_id: str, run_id: str) -> Response:
    """`text/event-stream`: the run as it stands (event `run`, its version as the event id),
    again at each change, then `done`. `Last-Event-ID` resumes after the version it names."""
    host = state().kernels
    after = version_from(request.headers.get("Last-Event-ID") or request.args.get("after"))
    first = host.get_run(kernel_id, run_id)  # a 404 comes as a 404, before the stream starts

    def events() -> Iterator[str]:
        run, seen = first, after
        while True:
            if run["version"] > seen:
                seen = run["version"]
                yield f"event: run\nid: {seen}\ndata: {json.dumps(run)}\n\n"
            if run["done"]:
                yield f"event: done\nid: {seen}\ndata: {json.dumps({'status': run['status']})}\n\n"
                return
            run = host.wait_run(kernel_id, run_id, after=seen, timeout=STREAM_WAIT)
            if run["version"] <= seen and not run["done"]:
                yield ": still running\n\n"

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def version_from(value: str | None) -> int:
    if value is None:
        return -1
    try:
        return int(value)
    except ValueError:
        raise APIError(400, f"an event id must be an integer, found {value!r}", "Bad Request") from None
