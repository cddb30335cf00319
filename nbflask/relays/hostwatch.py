"""What every relay (kernel channels, terminals) watches of the kernel host.

Its event feed: a relay subscribes to its kernel's or terminal's topic on the host's PUB
socket, and confirms the subscription (a hello it asked for comes back) before it asks the
host anything, since a ZeroMQ subscription takes effect some time after the connect and an
event published before then would be missed.

Its life: a host that died took its kernels and terminals with it, and nothing more will come
on their sockets, so a relay looks every HOST_CHECK_INTERVAL whether the host it began with
still runs, and tells its client when not.
"""

from __future__ import annotations

import time
from typing import Any

from .. import runtime
from ..protocol import wire, zmqlib

HOST_CHECK_INTERVAL = 1.0  # seconds between checks that the kernel host is alive
HELLO_TIMEOUT = 30.0  # seconds a relay asks for its hello before it goes on without


def confirm_subscription(host: Any, events: Any, topic: str, connection_id: str) -> bool:
    """Ask the host for a hello on `topic` until one arrives on `events` (a SUB socket of the
    host's event feed): from then on, nothing published on the topic can be missed. Other
    messages seen meanwhile are dropped. False if no hello came within HELLO_TIMEOUT."""
    deadline = time.monotonic() + HELLO_TIMEOUT
    while time.monotonic() < deadline:
        host.hello(topic, connection_id)
        end = time.monotonic() + 0.1
        while zmqlib.poll(events, max(0.0, end - time.monotonic()) * 1000):
            frames = events.recv_multipart()
            try:
                event = wire.loads_object(frames[1], "event")
            except (wire.WireError, IndexError):
                continue
            if event.get("event") == "hello" and event.get("connection_id") == connection_id:
                return True
    return False


def host_alive(pid: int | None) -> bool:
    """Whether the kernel host `pid` still runs (None, a host never known, counts as gone)."""
    return pid is not None and runtime.pid_alive(pid)


class HostChecks:
    """Looks, at most every HOST_CHECK_INTERVAL, whether the kernel host `pid` still runs: for
    a relay's loop, which asks on each turn. The first look is due after one interval, or at
    once (`at_once`: the host may have died while the relay connected)."""

    def __init__(self, pid: int | None, at_once: bool = False) -> None:
        self.pid = pid
        self.due = time.monotonic() + (0.0 if at_once else HOST_CHECK_INTERVAL)

    def host_died(self) -> bool:
        """True if a look is due and finds the host gone; False between looks."""
        if time.monotonic() < self.due:
            return False
        self.due = time.monotonic() + HOST_CHECK_INTERVAL
        return not host_alive(self.pid)
