"""One subscription to a kernel's iopub per web worker, shared by all its websockets there.

Every client of a kernel gets every iopub message. With a SUB socket per connection, a
worker received, verified and re-encoded each message once per client, and woke each
connection's pump to do it: with 10 clients on a kernel that was most of the worker's time
(docs/performance.md), where direct ZeroMQ clients get the kernel's fan-out in C. A feed
receives and verifies a message once, encodes it once per protocol, and hands it to each
relay in turn, which writes it to its websocket.

Only under gevent: the feed is a greenlet beside the relays' pumps, in the same thread, so
it may call into a relay between two of the pump's waits. With real threads (`flask run`)
each relay keeps its own SUB socket (`enabled()` is false).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import zmq

from ..protocol import wire, zmqlib

log = logging.getLogger(__name__)

IDLE_WAIT = 1.0  # seconds a feed with nothing to report waits before it looks again
BATCH_MESSAGES = 64  # messages already waiting are taken together, up to this many,
BATCH_BYTES = 4 * 1024 * 1024  # or this many bytes: each client then gets them in one write
_feeds: dict[tuple[str, str], IopubFeed] = {}


class IopubMessage:
    """A verified iopub message, with its encodings made at most once for all relays."""

    __slots__ = ("frames", "parts", "_legacy", "_v1")

    def __init__(self, frames: list[Any], parts: list[Any]) -> None:
        self.frames, self.parts = frames, parts
        self._legacy: tuple[list[bytes], bool] | None = None
        self._v1: tuple[list[bytes], bool] | None = None

    def encoded(self, v1: bool) -> tuple[list[bytes], bool]:
        """`(pieces, is_text)` of the message on the v1 or the legacy websocket protocol."""
        if v1:
            if self._v1 is None:
                self._v1 = (wire.v1_pieces("iopub", self.parts), False)
            return self._v1
        if self._legacy is None:
            text, pieces = wire.legacy_pieces("iopub", self.parts)
            self._legacy = (pieces, text)
        return self._legacy


def enabled() -> bool:
    """Whether relays share feeds: under gevent; with real threads each subscribes itself."""
    return zmqlib.is_green()


def join(kernel_id: str, url: str, key: bytes | str, relay: Any) -> IopubFeed:
    """Add `relay` to the feed of the kernel whose iopub is at `url`, started if need be.
    One step (no wait in between), so a feed whose last relay just left is never joined."""
    feed = _feeds.get((kernel_id, url))
    if feed is not None and not feed.stopped:
        feed.relays.append(relay)
        return feed
    feed = _feeds[(kernel_id, url)] = IopubFeed(kernel_id, url, key)
    feed.relays.append(relay)
    # Only now: starting a thread waits for it to begin, and under gevent other relays of
    # the kernel run meanwhile; they must find this feed, not start their own.
    threading.Thread(target=feed.run, daemon=True, name=f"iopub-{kernel_id[:8]}").start()
    return feed


class IopubFeed:
    """A kernel's iopub for the relays of one worker; ends with its last relay."""

    def __init__(self, kernel_id: str, url: str, key: bytes | str) -> None:
        self.kernel_id, self.url = kernel_id, url
        self.signer = wire.Signer(key)
        self.relays: list[Any] = []
        self.stopped = False
        self.sock = zmqlib.socket(zmq.SUB, connect=url, RCVHWM=0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")

    def remove(self, relay: Any) -> None:
        if relay in self.relays:
            self.relays.remove(relay)
        if not self.relays and not self.stopped:
            self.retire()  # the loop ends within IDLE_WAIT

    def retire(self) -> None:
        """Take no more relays: one that joins after this gets a new feed."""
        self.stopped = True
        if _feeds.get((self.kernel_id, self.url)) is self:
            del _feeds[(self.kernel_id, self.url)]

    def run(self) -> None:
        poller = zmqlib.poller()
        poller.register(self.sock, zmq.POLLIN)
        try:
            while not self.stopped:
                idle = True
                if poller.poll(self.report_wait() * 1000):
                    self.fan_out(self.take_waiting(poller))
                    idle = not poller.poll(0)  # more waiting: reports go at most every 50 ms
                self.report(idle)
        except Exception:  # noqa: BLE001 - the feed must end, and its relays with it
            log.exception("kernel %s: the iopub feed stopped", self.kernel_id)
            self.retire()  # first: a relay joining from now on gets a new feed
            for relay in list(self.relays):
                self.drop(relay)
        finally:
            self.stopped = True
            self.sock.close()

    def take_waiting(self, poller: Any) -> list[IopubMessage]:
        """The messages waiting (one at least, as a poll said), verified. The more a worker
        is behind, the more each write carries."""
        messages: list[IopubMessage] = []
        size = 0
        while True:
            frames = zmqlib.recv_frames(self.sock)
            try:
                _, signature, parts = wire.split(frames)
                self.signer.verify(signature, parts)
            except wire.WireError as exc:
                log.warning("kernel %s: dropped an iopub message: %s", self.kernel_id, exc)
            else:
                messages.append(IopubMessage(frames, parts))
                size += sum(len(frame) for frame in frames)
            if len(messages) >= BATCH_MESSAGES or size >= BATCH_BYTES or not poller.poll(0):
                return messages

    def fan_out(self, messages: list[IopubMessage]) -> None:
        if not messages:
            return
        for relay in list(self.relays):
            try:
                relay.on_iopub(messages)
            except Exception as exc:  # noqa: BLE001 - a client gone (or too slow) ends its relay only
                log.debug("kernel %s: %s left the feed: %r", self.kernel_id, relay.connection_id, exc)
                self.drop(relay)

    def drop(self, relay: Any) -> None:
        """A relay whose websocket failed: its reader is woken to end it."""
        self.remove(relay)
        relay.feed_failed()

    def report(self, idle: bool) -> None:
        """The host hears how far each client got (see progress.py: each time the feed falls
        idle, at most every 50 ms in a burst), in one notice for all that got as far, which
        is usually every one: a notice per client per message was the kernel host's main
        work with ten clients on a kernel."""
        reached: dict[bytes, list[Any]] = {}
        for relay in self.relays:
            header = relay.progress.take(idle) if relay.progress.unreported else None
            if header is not None:
                reached.setdefault(header, []).append(relay)
        for header, relays in reached.items():
            try:
                relays[0].host.progress(relays[0].notices, self.kernel_id,
                                        [relay.connection_id for relay in relays], header)
            except Exception:  # noqa: BLE001 - that relay's pump is closing its sockets
                log.debug("kernel %s: a progress notice failed", self.kernel_id, exc_info=True)

    def report_wait(self) -> float:
        """Seconds until a report is due for a client whose messages are still queued."""
        waits = [relay.progress.due_in() for relay in self.relays if relay.progress.unreported]
        return min(waits, default=IDLE_WAIT)
