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
    run = state().host.run_code(kernel_id, string_field(body, "code", required=True),  # type: ignore[arg-type]
                                   cell_id=string_field(body, "cell_id"), path=string_field(body, "path"))
    location = url_for(".get_run", kernel_id=kernel_id, run_id=run["id"])
    return jsonify(run), 202, {"Location": location}


@bp.get("/runs")
def list_runs(kernel_id: str) -> Response:
    return jsonify(state().host.list_runs(kernel_id, cell_id=request.args.get("cell_id")))


@bp.get("/runs/<run_id>")
def get_run(kernel_id: str, run_id: str) -> Response:
    return jsonify(state().host.get_run(kernel_id, run_id))


@bp.get("/runs/<run_id>/events")
def run_events(kernel_id: str, run_id: str) -> Response:
    """`text/event-stream`: the whole run as it stands (event `run`, its version as the event
    id), then what changed at each change (event `change`), then `done` with the status and
    the reason (or `error` if the run can no longer be followed). `Last-Event-ID` resumes
    after the version it names, with the whole run again if it is newer (the resuming
    client's outputs are replaced, so its view stays whole)."""
    host = state().host
    after = version_from(request.headers.get("Last-Event-ID") or request.args.get("after"))
    # at once, so a 404 comes as a 404, before the stream starts
    first = host.follow_run(kernel_id, run_id, known=None, after=after, timeout=0)

    def events() -> Iterator[str]:
        step, seen = first, after
        while True:
            if step["event"] is not None:
                seen = step["version"]
                yield f"event: {step['event']}\nid: {seen}\ndata: {json.dumps(step['data'])}\n\n"
            if step["done"]:
                ending = {"status": step["status"], "reason": step["reason"]}
                yield f"event: done\nid: {seen}\ndata: {json.dumps(ending)}\n\n"
                return
            if step["event"] is None and step is not first:
                yield ": still running\n\n"
            try:
                step = host.follow_run(kernel_id, run_id, known=step["cursor"], after=seen,
                                       timeout=STREAM_WAIT)
            except APIError as exc:  # the kernel host went away, or the run left the recording
                yield f"event: error\ndata: {json.dumps({'message': exc.message, 'reason': exc.reason})}\n\n"
                return

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def version_from(value: str | None) -> int:
    if value is None:
        return -1
    try:
        return int(value)
    except ValueError:
        raise APIError(400, f"an event id must be an integer, found {value!r}", "Bad Request") from None
