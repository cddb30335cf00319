"""Following a run's server-sent events as a client does: read them off the stream, and
apply them (`run` replaces the run, `change` is applied to it) as frontend/recorded-outputs
does, so tests can check that the changes rebuild the run exactly."""

from __future__ import annotations

import json

import requests


def follow(run: dict, change: dict) -> dict:
    """A change applied as a follower does (frontend/recorded-outputs applies it so too)."""
    outputs = run["outputs"][:change["count"]]
    for entry in change["outputs"]:
        if "output" in entry:
            outputs[entry["index"]:entry["index"] + 1] = [entry["output"]]
        else:
            stream = outputs[entry["index"]]
            outputs[entry["index"]] = {**stream, "text": stream["text"][:entry["keep"]] + entry["text"]}
    fields = {key: value for key, value in change.items() if key not in ("outputs", "count")}
    return {**run, **fields, "outputs": outputs}


def read_events(http: requests.Session, url: str, headers: dict | None = None,
                on_event=None) -> tuple[list[dict], int]:
    """The events of an event stream to its end (the server closes it after `done`), and the
    bytes it took; `on_event(event)` is called as each arrives."""
    events, size = [], 0
    with http.get(url, stream=True, timeout=60, headers=headers or {}) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        event: dict = {}
        for line in stream.iter_lines(decode_unicode=True):
            size += len(line.encode()) + 1
            if line.startswith(("event:", "id:", "data:")):
                key, _, value = line.partition(":")
                event[key] = value.strip()
            elif not line and event:
                events.append(event)
                if on_event is not None:
                    on_event(event)
                event = {}
    return events, size


def rebuilt(events: list[dict]) -> dict:
    """The run as a follower holds it after these events: `run` replaces it, `change` is
    applied to it (tests/runs/test_outputs.py's `follow`, as frontend/recorded-outputs does)."""
    run: dict = {}
    for event in events:
        if event["event"] == "run":
            run = json.loads(event["data"])
        elif event["event"] == "change":
            run = follow(run, json.loads(event["data"]))
    return run
