"""Replies still due to a websocket whose client left: handed to the kernel host for its session.

The kernel sends each reply (shell, control) and each input_request (stdin) to the DEALER
identity of the connection that sent the request; once that connection's sockets close,
ZeroMQ drops them. A cell run just before a network blip then never gets its
`execute_reply`, and JupyterLab shows `[*]` forever. Jupyter Server buffers every channel of
a session that left; here a relay whose client left with requests unanswered keeps its
identity's sockets open until those replies come (at most `kernels.replay_buffer_age`) and
hands each to the host, which gives it to the session's connection, now or when it is back,
on whichever worker (see KernelManager.park).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import zmq

from ..api_error import APIError
from ..protocol import wire, zmqlib

log = logging.getLogger(__name__)

CHECK_INTERVAL = 1.0  # seconds between looks at the host while waiting for replies
ENDS_WAIT = ("restarting", "restarted", "dead", "shutdown")  # events after which no reply comes


def parent_header(frames: list[Any]) -> dict[str, Any] | None:
    """The parent header of a kernel message, if it has one (unverified: for bookkeeping and
    for where to show a notice, never passed on as the kernel's)."""
    try:
        parent = wire.loads_object(bytes(wire.split(frames)[2][1]), "parent_header")
    except (wire.WireError, IndexError):
        return None
    return parent if isinstance(parent.get("msg_id"), str) else None


def parent_id(frames: list[Any]) -> str | None:
    """The msg_id of the request a kernel message answers."""
    parent = parent_header(frames)
    return None if parent is None else parent["msg_id"]


def event_kind(frames: list[bytes]) -> str | None:
    """The `event` of a host event (topic, JSON, and a kernel message's frames for some)."""
    try:
        kind = wire.loads_object(frames[1], "event").get("event")
    except (wire.WireError, IndexError):
        return None
    return kind if isinstance(kind, str) else None


class PendingReplies:
    """The requests a connection's client sent that the kernel has not answered yet, and the
    replies that came for it after its websocket failed."""

    def __init__(self) -> None:
        self.requests: set[str] = set()
        self.orphans: list[tuple[str, list[Any]]] = []  # (channel, frames) the client never got

    def sent(self, header: dict[str, Any]) -> None:
        """The client sent this request (a `*_request`: every one gets a reply)."""
        msg_type, msg_id = header.get("msg_type"), header.get("msg_id")
        if isinstance(msg_type, str) and msg_type.endswith("_request") and isinstance(msg_id, str):
            self.requests.add(msg_id)

    def answered(self, frames: list[Any]) -> None:
        """A kernel message on shell or control came: the request it answers is answered."""
        parent = parent_id(frames)
        if parent is not None:
            self.requests.discard(parent)

    def forget(self) -> None:
        """The kernel restarted or died: its answers to earlier requests will never come."""
        self.requests.clear()

    def due(self) -> bool:
        return bool(self.requests or self.orphans)

    def hand_over(self, host: Any, kernel_id: str, session_id: str, sockets: dict[str, Any],
                  events: Any, nudges: set[str], until: float, host_alive: Any) -> None:
        """Give the host every reply due to this connection (the orphans first, then those
        that come on `sockets` until all requests are answered or `until`), for session
        `session_id`. Stops early when the kernel restarts, dies or is shut down (`events`),
        or the host is gone (`host_alive()` false)."""
        poller = zmqlib.poller()
        channel_of = {sockets[name]: name for name in ("shell", "control", "stdin")}
        for sock in (*channel_of, events):
            poller.register(sock, zmq.POLLIN)
        try:
            for channel, frames in self.orphans:
                host.park(kernel_id, session_id, channel, [bytes(frame) for frame in frames])
            self.orphans.clear()
            while self.requests and time.monotonic() < until and host_alive():
                wait = min(CHECK_INTERVAL, max(until - time.monotonic(), 0.0))
                for sock, _ in poller.poll(max(1, wait * 1000)):
                    if sock is events:
                        event = events.recv_multipart()
                        if event[0] == kernel_id.encode() and event_kind(event) in ENDS_WAIT:
                            return
                        continue
                    channel, frames = channel_of[sock], zmqlib.recv_frames(sock)
                    parent = parent_id(frames)
                    if channel != "stdin" and parent in nudges:  # the relay's own kernel_info
                        nudges.discard(parent)
                        continue
                    if channel != "stdin":
                        self.answered(frames)
                    host.park(kernel_id, session_id, channel, [bytes(frame) for frame in frames])
        except APIError as exc:
            log.warning("kernel %s: replies for session %s lost: %s", kernel_id, session_id, exc.message)
        finally:
            if self.requests:
                log.info("kernel %s: %d requests of session %s left unanswered", kernel_id,
                         len(self.requests), session_id)
