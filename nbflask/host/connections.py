"""The websockets attached to a kernel, and what a session that comes back has missed.

Each web worker tells the host of its kernel websockets: which session each serves, which
worker holds it, and how far it delivered the kernel's iopub messages. When a websocket goes
(closed, replaced by the same session's new one, or lost with its worker) its session keeps
its place in the kernel's replay buffer (replay.py), and its next connection is handed what
came after it, and the replies kept for it meanwhile. These functions act on one kernel; the
registry (manager.py) finds the kernel and tells the workers (`replaced`, `reply` events).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
import gevent.event

from .. import runtime
from ..api_error import APIError
from ..protocol import wire
from .kernel import Kernel

log = logging.getLogger(__name__)

DEPARTURE_WAIT = 2.0  # seconds a reconnecting session waits for its old connection to report
POSITION_WAIT = 0.5  # seconds a message the relay delivered may take to reach the host's buffer


def attach(kernel: Kernel, connection_id: str, session_id: str, worker: int) -> list[str]:
    """Register a websocket of web worker `worker`; the ids of the older connections of the
    same session, which must go (a reconnecting session waits for them to report: `replay`).

    A websocket of a session delivers nothing before its replay, which gives it the session's
    place: until then it is `unplaced`, and its leaving moves no place."""
    replaced = []
    for old_id, old_session in list(kernel.connections.items()):
        if session_id and old_session == session_id and old_id != connection_id:
            del kernel.connections[old_id]
            kernel.departing[old_id] = old_session
            replaced.append(old_id)
    kernel.connections[connection_id] = session_id
    kernel.workers[connection_id] = worker
    kernel.delivered[connection_id] = kernel.replay.latest
    if session_id:
        kernel.unplaced.add(connection_id)
    kernel.touch()
    return replaced


def progress(kernel: Kernel, connection_ids: list[str], header: bytes) -> None:
    """Websockets (of one web worker, which tells of them together) delivered the iopub
    message with this header: if their worker dies without saying goodbye, their sessions
    resume from here."""
    if not kernel.replay.enabled:
        return
    if not any(connection_id in kernel.delivered for connection_id in connection_ids):
        return
    try:
        seq = position(kernel, str(wire.loads_object(header, "header").get("msg_id")))
    except wire.WireError:
        return
    for connection_id in connection_ids:
        if seq is not None and connection_id in kernel.delivered:  # notices may overtake each other
            kernel.delivered[connection_id] = max(seq, kernel.delivered[connection_id])


def detach(kernel: Kernel, connection_id: str, last_msg_id: str | None = None) -> None:
    """A websocket went away; `last_msg_id` is the last iopub message it delivered, which
    becomes its session's place in the replay buffer."""
    seq = position(kernel, last_msg_id) if last_msg_id else None
    depart(kernel, connection_id, seq)


def depart(kernel: Kernel, connection_id: str, seq: int | None = None) -> None:
    """Forget a websocket, keeping its session's place (the last message it is known to
    have delivered) for a reconnect."""
    session_id = kernel.connections.pop(connection_id, None) or kernel.departing.pop(connection_id, None)
    kernel.workers.pop(connection_id, None)
    delivered = kernel.delivered.pop(connection_id, kernel.replay.latest)
    unplaced = connection_id in kernel.unplaced
    kernel.unplaced.discard(connection_id)
    if session_id is None:
        return
    kernel.touch()
    # One that was never replayed to delivered nothing: the session's place stays where it is
    # kept (or with its other websockets); only a new session starts from its attach.
    if not (unplaced and _place_kept(kernel, session_id)):
        kernel.replay.remember(session_id, delivered if seq is None else max(seq, delivered))
    departed = kernel.departed.pop(session_id, None)
    if departed is not None:
        departed.set()


def _place_kept(kernel: Kernel, session_id: str) -> bool:
    """Whether session `session_id` has a place besides a websocket leaving: remembered, or
    held by another of its websockets (connected, or replaced and yet to report)."""
    return (session_id in kernel.replay.cursors or session_id in kernel.connections.values()
            or session_id in kernel.departing.values())


def _await_departures(kernel: Kernel, session_id: str, connection_id: str) -> None:
    """Until every replaced websocket of the session has reported how far it got, at most
    DEPARTURE_WAIT; those still silent then (their worker is gone or stuck) depart with their
    last progress. Not for websocket `connection_id` if it is replaced itself."""
    deadline = time.monotonic() + DEPARTURE_WAIT
    while connection_id in kernel.connections and session_id in kernel.departing.values():
        left = deadline - time.monotonic()
        if left <= 0:
            for old_id, departing_session in list(kernel.departing.items()):
                if departing_session == session_id:
                    depart(kernel, old_id)
            return
        kernel.departed.setdefault(session_id, gevent.event.Event()).wait(left)  # any departure sets it


def prune(kernel: Kernel) -> None:
    """Forget the websockets of web workers that died (SIGKILL, OOM) without detaching, and
    let go of replay messages past their age (the kernel may have fallen silent)."""
    kernel.replay.trim()
    for connection_id, worker in list(kernel.workers.items()):
        if worker and not runtime.pid_alive(worker):
            log.info("kernel %s: connection %s went with its worker %d", kernel.kernel_id,
                     connection_id, worker)
            depart(kernel, connection_id)


def position(kernel: Kernel, msg_id: str, wait: float = POSITION_WAIT) -> int | None:
    """Where `msg_id` is in the buffer; the host's own iopub socket may be a moment behind
    the relay's, so a message not there yet is waited for, briefly."""
    if not kernel.replay.enabled:
        return None
    deadline = time.monotonic() + wait
    while True:
        seq = kernel.replay.position_of(msg_id)
        if seq is not None or time.monotonic() > deadline:
            return seq
        gevent.sleep(0.02)


def park(kernel: Kernel, session_id: str, channel: str, frames: list[bytes]) -> str | None:
    """A reply (shell, control, stdin) came for session `session_id` after its connection
    left: the session's connection now, to be given it at once (an event, whichever worker it
    is on); with none, the reply is kept for its next one, which gets it with its replay."""
    if not kernel.replay.enabled:
        return None
    for connection_id, connected_session in kernel.connections.items():
        if connected_session == session_id and connection_id not in kernel.unplaced:
            return connection_id
    kernel.replay.park(session_id, channel, frames)
    return None


def replay(kernel: Kernel, session_id: str, connection_id: str,
           first_live: str | None = None) -> tuple[dict[str, Any], list[bytes]]:
    """What session `session_id` missed while away, for its new connection.

    `first_live` is the first iopub message the new connection got live (it subscribed
    before asking): the replay ends just before it. `seen` is the id of the last message
    the session had seen: an old connection may have delivered it, and some before it,
    while the new one had already subscribed. The answer: `{"counts": frames per message,
    "seen", "dropped": messages lost to the buffer's bounds, "known": whether the session
    was seen before, "replies": [channel, frame count] of each reply kept for it}`, then
    the messages' frames and the replies', all in one list.
    """
    _await_departures(kernel, session_id, connection_id)
    if connection_id not in kernel.connections:  # replaced: its client has left it for a newer one
        raise APIError(409, "replaced by a newer connection of its session", "ConnectionReplaced")
    replies = kernel.replay.unpark(session_id)
    reply_counts = [[channel, len(frames)] for channel, frames in replies]
    reply_frames = [frame for _, frames in replies for frame in frames]
    cursor = kernel.replay.take(session_id)
    kernel.unplaced.discard(connection_id)  # the session's place is now its own
    if cursor is None:
        unknown = {"counts": [], "seen": None, "dropped": 0, "known": False, "replies": reply_counts}
        return unknown, reply_frames
    kernel.delivered[connection_id] = cursor  # it starts from where the session was
    live_from = position(kernel, first_live, wait=DEPARTURE_WAIT) if first_live else None
    entries, dropped = kernel.replay.since(cursor)
    if live_from is not None:
        entries = [entry for entry in entries if entry.seq < live_from]
    frames = [frame for entry in entries for frame in entry.frames]
    return {"counts": [len(entry.frames) for entry in entries], "seen": kernel.replay.msg_id_at(cursor),
            "dropped": dropped, "known": True, "replies": reply_counts}, frames + reply_frames
