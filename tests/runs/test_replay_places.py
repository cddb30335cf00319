"""A session's place in its kernel's replay buffer while its websockets come and go in a race.

The kernel host's bookkeeping alone (KernelManager, no kernel process): a client whose new
websocket is cut before its replay (its worker stopping, under gunicorn's max_requests)
reconnects again at once, so the host sees websockets of one session attach, get replaced
and leave in every order. Whatever the order, the session's next replay starts after the
last message one of its websockets delivered.
"""

from __future__ import annotations

from pathlib import Path

import gevent
import pytest

from nbflask.api_error import APIError
from nbflask.config import load_settings
from nbflask.host.kernel import Kernel
from nbflask.host.manager import KernelManager
from nbflask.host.replay import ReplayBuffer

KERNEL = "k1"
SESSION = "s1"


@pytest.fixture
def host(tmp_path):
    """A manager with one kernel (no process) whose iopub is added by hand; the events it
    publishes are in `host.published`."""
    published: list[dict] = []
    manager = KernelManager(load_settings({"store": {"root_dir": str(tmp_path)}}, environ={}),
                            lambda topic, event, frames=(): published.append(event))
    manager.kernels[KERNEL] = Kernel(KERNEL, spec=None, cwd=str(tmp_path), connection={},
                                     connection_file=Path(tmp_path / "unused.json"),
                                     replay=ReplayBuffer(1 << 20, 600), recording=None)
    manager.published = published
    return manager


def said(host: KernelManager, *numbers: int) -> None:
    for number in numbers:
        host.kernels[KERNEL].replay.append(f"m{number}", [f"m{number}".encode()])


def replayed(host: KernelManager, connection_id: str, first_live: str) -> tuple[list[bytes], str | None]:
    """The messages replayed to websocket `connection_id` of SESSION, and the `seen` it is told."""
    result, frames = host.replay(KERNEL, SESSION, connection_id, first_live)
    return frames[:sum(result["counts"])], result["seen"]


def left_at_m3(host: KernelManager) -> None:
    """c1 delivered m1..m3 of m1..m5, then left; then m6..m8 came."""
    host.attach(KERNEL, "c1", SESSION)
    replayed(host, "c1", "m1")  # a new session: nothing
    said(host, 1, 2, 3, 4, 5)
    host.detach(KERNEL, "c1", "m3")
    said(host, 6, 7, 8)


MISSED = [b"m4", b"m5", b"m6", b"m7", b"m8", b"m9"]


def test_a_websocket_replaced_before_its_replay_moves_no_place(host):
    left_at_m3(host)
    host.attach(KERNEL, "c2", SESSION)  # cut before its replay: the client comes back as c3
    said(host, 9)
    host.attach(KERNEL, "c3", SESSION)
    host.detach(KERNEL, "c2")
    said(host, 10)
    assert replayed(host, "c3", "m10") == (MISSED, "m3")


def test_the_replay_a_replaced_websocket_asks_for_is_refused_and_the_newer_one_gets_it(host):
    left_at_m3(host)
    host.attach(KERNEL, "c2", SESSION)
    said(host, 9)
    host.attach(KERNEL, "c3", SESSION)
    with pytest.raises(APIError) as refused:
        replayed(host, "c2", "m9")
    assert refused.value.status == 409
    host.detach(KERNEL, "c2")
    said(host, 10)
    assert replayed(host, "c3", "m10") == (MISSED, "m3")


def test_a_session_back_waits_for_each_of_its_replaced_websockets(host):
    host.attach(KERNEL, "c1", SESSION)
    replayed(host, "c1", "m1")
    said(host, 1, 2, 3, 4, 5, 6, 7, 8)  # c1 is still delivering (m3 so far)
    host.attach(KERNEL, "c2", SESSION)  # c1 replaced
    said(host, 9)
    host.attach(KERNEL, "c3", SESSION)  # c2 replaced before its replay
    said(host, 10)
    replay = gevent.spawn(replayed, host, "c3", "m10")
    gevent.idle()  # waiting for c1 and c2 to report
    host.detach(KERNEL, "c2")
    gevent.idle()
    assert not replay.ready()  # c1 has not reported yet
    host.detach(KERNEL, "c1", "m3")
    assert replay.get(timeout=10) == (MISSED, "m3")


def test_a_new_session_whose_first_websocket_left_before_its_replay_starts_where_it_attached(host):
    said(host, 1, 2)
    host.attach(KERNEL, "c1", SESSION)
    said(host, 3)
    host.detach(KERNEL, "c1")
    host.attach(KERNEL, "c2", SESSION)
    said(host, 4)
    assert replayed(host, "c2", "m4") == ([b"m3"], "m2")


def test_a_reply_for_a_session_whose_websocket_is_not_replayed_to_yet_comes_with_the_replay(host):
    left_at_m3(host)
    host.attach(KERNEL, "c2", SESSION)  # it may still be cut before its replay
    host.park(KERNEL, SESSION, "shell", [b"reply"])
    assert [event for event in host.published if event["event"] == "reply"] == []
    said(host, 9)
    result, frames = host.replay(KERNEL, SESSION, "c2", "m9")
    assert result["replies"] == [["shell", 1]] and frames[-1] == b"reply"
    host.park(KERNEL, SESSION, "shell", [b"later"])  # c2 has the session's place now: at once
    assert [event["connection_id"] for event in host.published if event["event"] == "reply"] == ["c2"]

