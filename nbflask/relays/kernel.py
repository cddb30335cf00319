"""The websocket relay: one browser or Jupyter client connection <-> one kernel's ZeroMQ sockets.

Two workers per connection. The *reader* (the request's greenlet or thread) receives
websocket frames, decodes and signs them, and hands them through an inproc pipe to the
*pump*, which owns every ZeroMQ socket of the connection (shell, control, stdin with one
shared DEALER identity; the host's event feed) and writes to the websocket. So each ZeroMQ
socket has one owner, under gevent and under real threads alike. Iopub comes, under gevent,
from the worker's one subscription to the kernel, shared by its connections (iopubfeed.py),
which calls `on_iopub` between the pump's waits; with real threads the pump owns an iopub
SUB socket of its own, with no high-water mark.

The pump first confirms the iopub subscription (kernel_info "nudges" until iopub speaks)
before relaying the client's first request, so no early output is lost. A client that comes
back with the `session_id` it had is then handed what its kernel said on iopub meanwhile,
before live messages (resume.py). Kernel messages are verified (HMAC) and passed on as the
kernel serialised them: spliced into the v1 binary frame, or into the legacy JSON text. The
kernel's key never leaves the server. The host hears how far the client has got (progress.py).

The pump also watches the kernel host (hostwatch.py): if it dies, its kernels die with it, so
each client is told `status: dead` with the reason and its websocket is closed.

A client that leaves with requests unanswered (a cell still running) leaves its pump behind,
holding the connection's identity on the kernel's sockets until the replies come, which it
hands to the host for the session's next connection (pending.py).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import zmq
from simple_websocket import ConnectionClosed

from ..api_error import APIError
from ..protocol import endpoints, wire, zmqlib
from ..websocket import Websocket
from . import hostwatch, iopubfeed, pending
from .hostwatch import HOST_CHECK_INTERVAL, HostChecks
from .progress import Progress
from .resume import Resume

log = logging.getLogger(__name__)

NUDGE_FIRST = 0.025  # the first nudges come fast (a kernel just started is soon up), then
NUDGE_INTERVAL = 0.5  # each waits twice as long as the one before, up to this
NUDGE_TIMEOUT = 30.0  # a new kernel is still starting when its first client connects
STDIN_CONNECT_WAIT = 5.0  # seconds a relay waits for its stdin socket once the kernel is up
NUDGED = ("shell", "control")  # a busy kernel answers only control (Jupyter Server nudges both)
FEED_LOOK = 0.005  # seconds between looks at the shared feed while confirming iopub
STOP = b""
LAST_WRITES = 2.0  # seconds an ending connection may take to write out what it has taken
HOST_PID = "nbflask_host"  # in the connection info: the pid of the host that gave it (host.kernel.HOST_KEY)


class HostDied(Exception):
    """The kernel host died while the relay was still connecting."""


class Relay:
    """One client connection to one kernel: `run` is its reader, `pump` the rest (see above)."""

    def __init__(self, ws: Websocket, *, host: Any, kernel_id: str, session_id: str,
                 connection: dict[str, Any], linger: float = 0.0) -> None:
        """`linger`: seconds a relay whose client left may wait for the replies still due to
        it, for the session's next connection (0: none are kept)."""
        self.ws = ws
        self.kernel_id = kernel_id
        self.client_session = session_id
        self.session_id = session_id or uuid.uuid4().hex
        self.connection_id = uuid.uuid4().hex
        self.connection = connection
        self.host = host
        self.signer = wire.Signer(connection["key"])
        self.v1 = ws.subprotocol == wire.V1_SUBPROTOCOL
        self.pipe_url = f"inproc://nbflask-relay-{self.connection_id}"
        self.restarted = False
        self.progress = Progress(ws)  # how far the client has got in the kernel's iopub
        self.resume = Resume(self)
        self.notices: Any = None  # the pump's socket for notices to the host (progress, runs)
        self.stdin_connects: Any = None  # the pump's events: its stdin socket (re)connected
        self.feed: iopubfeed.IopubFeed | None = None  # the worker's shared iopub of this kernel
        self.iopub_spoke = False  # an iopub message came since confirm_iopub began
        self.host_pid: int | None = None  # the kernel host this relay talks to
        self.linger = linger
        self.pending = pending.PendingReplies()
        self.kernel_gone = False  # shut down or dead: no reply will come
        self.released = threading.Event()  # set once the pump has let go of the websocket

    def url(self, channel: str) -> str:
        return endpoints.url(self.connection, channel)

    # Reader: websocket -> pipe -------------------------------------------------------------

    def run(self) -> None:
        """Relay until either side closes; returns when the pump has let go of the websocket
        (it may stay on, for replies still due: see `pending`)."""
        pipe = zmqlib.socket(zmq.PAIR, bind=self.pipe_url, SNDHWM=0)
        # The pump's end is connected here, so no early frame finds it missing, then handed
        # over: from the thread's start on, the pump is its only user.
        pump_end = zmqlib.socket(zmq.PAIR, connect=self.pipe_url, RCVHWM=0)
        pump = threading.Thread(target=self.pump, args=(pump_end,), daemon=True,
                                name=f"relay-{self.connection_id[:8]}")
        pump.start()
        try:
            while True:
                data = self.ws.receive(timeout=5)
                if data is None:
                    if not self.ws.connected:
                        break
                    continue
                frames = self.decode(data)
                if frames is not None:
                    pipe.send_multipart(frames, zmq.NOBLOCK)  # never blocks while the pump lives
        except zmq.Again:
            log.debug("relay %s: the pump is gone", self.connection_id)
        finally:
            try:
                pipe.send(STOP, zmq.NOBLOCK)
            except zmq.Again:
                pass
            self.released.wait(10)
            pipe.close()

    def decode(self, data: str | bytes) -> list[bytes] | None:
        """`[channel, *signed frames]` for a client frame, or None (logged) if it is unusable."""
        try:
            if self.v1:
                if isinstance(data, str):
                    raise wire.WireError("text frame on the v1 protocol")
                channel, parts = wire.v1_unpack(data)
                wire.check_parts(parts)
            else:
                channel, message = wire.legacy_unpack(data)
                parts = message.parts()
            if channel not in ("shell", "control", "stdin"):
                raise wire.WireError(f"clients cannot send on channel {channel!r}")
        except wire.WireError as exc:
            log.warning("kernel %s: dropped a client message: %s", self.kernel_id, exc)
            return None
        return [channel.encode(), *self.signer.frames(parts)]

    # Pump: ZeroMQ sockets -> websocket, pipe -> ZeroMQ sockets ------------------------------

    def pump(self, pipe: Any) -> None:
        identity = f"{self.session_id}-{self.connection_id}".encode()
        sockets = {
            name: zmqlib.socket(zmq.DEALER, connect=self.url(name), IDENTITY=identity)
            for name in ("shell", "control")
        }
        sockets["stdin"] = zmqlib.socket(zmq.DEALER, IDENTITY=identity)
        self.stdin_connects = zmqlib.watch_connects(sockets["stdin"], self.url("stdin"))
        if not iopubfeed.enabled():
            sockets["iopub"] = zmqlib.socket(zmq.SUB, connect=self.url("iopub"), RCVHWM=0)
            sockets["iopub"].setsockopt(zmq.SUBSCRIBE, b"")
        events = zmqlib.socket(zmq.SUB, connect=self.host.events_url())
        events.setsockopt(zmq.SUBSCRIBE, self.kernel_id.encode())
        self.notices = self.host.progress_socket()
        channel_of = {sock: name for name, sock in sockets.items()}
        nudging = zmqlib.poller()  # while confirming iopub: client requests wait
        for sock in (sockets["shell"], sockets["control"], sockets.get("iopub"), events):
            if sock is not None:
                nudging.register(sock, zmq.POLLIN)
        poller = zmqlib.poller()
        for sock in (*sockets.values(), events, pipe):
            poller.register(sock, zmq.POLLIN)
        nudges: set[str] = set()
        attached = False
        # The host that gave the connection info (its pid is in it), known before anything is
        # asked of it: one that dies while this relay connects is told as a death too.
        host_pid = self.host_pid = self.connection.get(HOST_PID) or self.host.pid()
        try:
            self.confirm_events(events)
            self.host.attach(self.kernel_id, self.connection_id, self.client_session)
            attached = True
            self.host.wait_settled(self.kernel_id, NUDGE_TIMEOUT)  # the host records from the start
            if self.client_session:
                self.resume.hold()
            if iopubfeed.enabled():
                self.feed = iopubfeed.join(self.kernel_id, self.url("iopub"), self.connection["key"], self)
            self.confirm_iopub(nudging, sockets, events, nudges)
            if self.client_session:
                self.resume.replay()
            checks = HostChecks(host_pid, at_once=True)  # it may have died while this one connected
            while True:
                ready = dict(poller.poll(0)) if self.progress.unreported else {}
                if not ready:  # idle: first tell the host how far the client got
                    if self.progress.unreported:
                        self.report_progress(idle=True)
                    # Unreported (still queued): look again when a report is due.
                    wait = self.progress.due_in() if self.progress.unreported else HOST_CHECK_INTERVAL
                    ready = dict(poller.poll(wait * 1000))
                if checks.host_died():
                    self.host_died(host_pid)
                    attached = False
                    return
                if events in ready:  # first, and alone: a restart makes client requests wait
                    if not self.on_event(events.recv_multipart()):
                        return
                    if self.restarted:
                        self.restarted = False
                        self.confirm_iopub(nudging, sockets, events, nudges)
                    continue
                for sock in ready:
                    if sock is pipe:
                        frames = pipe.recv_multipart()
                        if frames == [STOP]:
                            return
                        if frames[0] != b"stdin":
                            self.note_request(frames)
                        sockets[frames[0].decode()].send_multipart(frames[1:])
                    else:
                        self.to_client(channel_of[sock], zmqlib.recv_frames(sock), nudges)
        except (APIError, HostDied) as exc:  # the kernel, or its host, went away while connecting
            if not self.host_alive():
                attached = False  # a detach would start a fresh host, which knows nothing of it
                self.host_died(host_pid)
            else:
                self.close(1011, getattr(exc, "message", str(exc)))
        except Exception as exc:
            if self.ws.connected:
                log.exception("kernel %s: relay stopped", self.kernel_id)
            log.debug("relay %s ended: %r", self.connection_id, exc)
        finally:
            if self.feed is not None:
                self.feed.remove(self)
            if self.ws.connected:  # the pump stops first: the client must not wait for it
                self.close(1011, "relay stopped")
            lingers = (attached and self.linger > 0 and bool(self.client_session)
                       and not self.kernel_gone and self.pending.due())
            kept = (sockets["shell"], sockets["control"], sockets["stdin"], events) if lingers else ()
            for sock in (*sockets.values(), events, pipe, self.notices, self.stdin_connects):
                if sock not in kept:
                    sock.close()
            if attached:
                self.ws.drain(LAST_WRITES)  # what was taken goes out before the host is told
                self.progress.advance()
                try:
                    self.host.detach(self.kernel_id, self.connection_id, self.progress.last_msg_id())
                except APIError as exc:
                    log.debug("detach of %s failed: %s", self.connection_id, exc.message)
            self.released.set()
            if lingers:  # detached first: the host then gives the replies to the next connection
                self.pending.hand_over(self.host, self.kernel_id, self.client_session, sockets, events,
                                       nudges, time.monotonic() + self.linger, self.host_alive)
                for sock in kept:
                    sock.close()

    def note_request(self, frames: list[bytes]) -> None:
        """A client's message on shell or control: a request's reply is due to this connection
        (see `pending`); of an execute request, the host records the outputs for the cell
        JupyterLab and Notebook 7 name in its metadata (`cellId`), for whoever opens the
        notebook next."""
        header = frames[3]  # channel, delimiter, signature, header, parent, metadata, content
        try:
            fields = wire.loads_object(header, "header")
            self.pending.sent(fields)
            if fields.get("msg_type") != "execute_request" or frames[0] != b"shell":
                return
            cell_id = wire.loads_object(frames[5], "metadata").get("cellId")
        except wire.WireError:
            return
        cell_id = cell_id if isinstance(cell_id, str) else None
        self.host.executing(self.notices, self.kernel_id, cell_id, header)

    def host_alive(self) -> bool:
        """Whether the host this relay began with still runs."""
        return hostwatch.host_alive(self.host_pid)

    def host_died(self, pid: int | None) -> None:
        """The kernel host is gone, and perhaps the kernel with it: say so, then hang up."""
        reason, kernel_lost = self.host.departure(pid)
        log.warning("kernel %s: %s", self.kernel_id, reason)
        if kernel_lost:
            status = wire.new_message("status", {"execution_state": "dead", "reason": reason},
                                      session=self.session_id)
            try:
                self.send("iopub", status.parts())
            except (ConnectionClosed, OSError):
                return
        self.close(1011, "kernel host died" if kernel_lost else "kernel host restarting")

    def confirm_events(self, events: Any) -> None:
        if not hostwatch.confirm_subscription(self.host, events, self.kernel_id, self.connection_id):
            log.warning("kernel %s: no host events within %g s", self.kernel_id, hostwatch.HELLO_TIMEOUT)

    def close(self, code: int, message: str, wait: bool = True) -> None:
        try:
            self.ws.close(code, message[:120], wait=wait)
        except (ConnectionClosed, OSError):
            pass

    def confirm_iopub(self, poller: Any, sockets: dict[str, Any], events: Any, nudges: set[str]) -> None:
        """Send kernel_info requests until iopub delivers something: then we are subscribed.
        From the second on, on control too: a kernel running a cell answers only there (with
        its status on iopub), and an idle one answers the first on shell alone (each nudge puts
        two status messages into every client's stream and the replay buffer).

        Done at connection and after each kernel restart (ZeroMQ then reconnects the SUB
        socket on its own time), so the output of the next request cannot be lost.
        """
        self.restarted = False  # a restart seen from here on needs its own confirmation
        self.iopub_spoke = False  # set by the first iopub message from here on (the feed's too)
        deadline = time.monotonic() + NUDGE_TIMEOUT
        next_nudge, interval = 0.0, NUDGE_FIRST
        checks = HostChecks(self.host_pid)
        while time.monotonic() < deadline:
            if checks.host_died():  # a dead host's kernel never speaks again
                raise HostDied()
            if time.monotonic() >= next_nudge:
                for channel in NUDGED if next_nudge else NUDGED[:1]:  # control once shell was slow
                    nudge = wire.new_message("kernel_info_request", {}, session=self.session_id)
                    nudges.add(nudge.msg_id)
                    sockets[channel].send_multipart(self.signer.serialize(nudge))
                next_nudge, interval = time.monotonic() + interval, min(2 * interval, NUDGE_INTERVAL)
            wait = next_nudge - time.monotonic()
            if self.feed is not None:  # whose messages wake no socket of ours
                wait = min(wait, FEED_LOOK)
            for sock, _ in poller.poll(max(1, wait * 1000)):
                if sock is events:
                    if not self.on_event(events.recv_multipart()):
                        raise ConnectionAbortedError("closed while connecting")
                    continue
                channel = next(name for name, owned in sockets.items() if owned is sock)
                self.to_client(channel, zmqlib.recv_frames(sock), nudges)
                self.iopub_spoke = self.iopub_spoke or channel == "iopub"
            if self.iopub_spoke:
                self.confirm_stdin()
                return
        log.warning("kernel %s: no iopub message within %g s; relaying anyway", self.kernel_id, NUDGE_TIMEOUT)

    def confirm_stdin(self) -> None:
        """Wait until the stdin socket has (re)connected to the kernel, which is up once iopub
        speaks. The kernel's stdin ROUTER drops an input_request for an identity it has not
        met yet, and the cell then waits for input forever: ZeroMQ retries a connection made
        before the kernel listened only after its reconnect interval, and a quick `input()`
        came sooner."""
        if not zmqlib.wait_connected(self.stdin_connects, STDIN_CONNECT_WAIT):
            log.warning("kernel %s: stdin not connected within %g s; relaying anyway",
                        self.kernel_id, STDIN_CONNECT_WAIT)

    def to_client(self, channel: str, frames: list[bytes], nudges: set[str]) -> None:
        if channel == "iopub":
            if self.resume.goes_live(frames):
                self.deliver(channel, frames, nudges)
            return
        if channel != "stdin":
            self.pending.answered(frames)
        try:
            self.deliver(channel, frames, nudges)
        except (ConnectionClosed, OSError):  # the client is gone: the session's next connection gets it
            self.pending.orphans.append((channel, frames))
            raise

    def on_iopub(self, messages: list[iopubfeed.IopubMessage]) -> None:
        """Messages of the shared feed, verified and encoded: sent on in one write
        (ConnectionClosed if the client is gone or too slow)."""
        self.iopub_spoke = True
        live = [message for message in messages if self.resume.goes_live(message.frames)]
        if not live:
            return
        ends = self.ws.send_messages([message.encoded(self.v1) for message in live])
        # The feed reports for all its relays at once.
        self.progress.queued((end, bytes(message.parts[0])) for end, message in zip(ends, live, strict=True))

    def feed_failed(self) -> None:
        """The feed could not hand this client a message (it is gone, or too slow and closed
        with 4008): end the relay; its client may reconnect and resume."""
        if self.ws.connected:  # called by the feed: it must not wait for this client's backlog
            self.close(1011, "relay stopped", wait=False)

    def deliver(self, channel: str, frames: list[bytes], nudges: set[str] | None = None) -> None:
        """Verify a kernel message and send it on, unless it answers one of our nudges."""
        try:
            _, signature, parts = wire.split(frames)
            self.signer.verify(signature, parts)
            if nudges and channel in NUDGED:
                parent = wire.loads_object(parts[1], "parent_header").get("msg_id")
                if parent in nudges:
                    nudges.discard(parent)
                    return
        except wire.WireError as exc:
            log.warning("kernel %s: dropped a %s message: %s", self.kernel_id, channel, exc)
            return
        end = self.send(channel, parts)
        if channel == "iopub":
            self.progress.queued([(end, bytes(parts[0]))])
            self.report_progress()

    def report_progress(self, idle: bool = False) -> None:
        """Tell the host how far this client has got, if a report is due (progress.py)."""
        header = self.progress.take(idle)
        if header is not None:
            self.host.progress(self.notices, self.kernel_id, [self.connection_id], header)

    def send(self, channel: str, parts: list[bytes]) -> int:
        """Send a kernel message in the client's protocol; the offset at which it ends."""
        if self.v1:
            return self.ws.send_message(wire.v1_pieces(channel, parts))
        text, pieces = wire.legacy_pieces(channel, parts)
        return self.ws.send_message(pieces, text=text)

    def on_event(self, frames: list[bytes]) -> bool:
        """Act on news from the host; False when this connection must end."""
        if frames[0] != self.kernel_id.encode():
            return True  # a topic our kernel's id begins (ZeroMQ subscribes by prefix)
        try:
            event = wire.loads_object(frames[1], "event")
        except (wire.WireError, IndexError):
            return True
        kind = event.get("event")
        if kind in pending.ENDS_WAIT:
            self.pending.forget()
            self.kernel_gone = kind in ("dead", "shutdown")
        if kind == "reply" and event.get("connection_id") == self.connection_id:
            if event.get("channel") in ("shell", "control", "stdin"):  # left for this session
                self.deliver(event["channel"], frames[2:])
        elif kind in ("restarting", "dead"):
            status = wire.new_message("status", {"execution_state": kind, "reason": event.get("reason")},
                                      session=self.session_id)
            self.send("iopub", status.parts())
        elif kind == "restarted":
            self.restarted = True  # a new process: its iopub must be confirmed again
        elif kind == "shutdown" or (kind == "replaced" and event.get("connection_id") == self.connection_id):
            if kind == "replaced":  # what is still queued, the new connection replays
                self.ws.discard_queued()
            self.close(1000, "kernel shut down" if kind == "shutdown" else "replaced by a newer connection")
            return False
        return True
