"""The kernel host's replay buffer: replies kept for a session away are bounded and handed over once."""

from __future__ import annotations

from nbflask.host.replay import ENTRY_OVERHEAD, ReplayBuffer


def test_replies_kept_for_a_session_away_go_to_it_once_and_within_the_bounds():
    buffer = ReplayBuffer(max_bytes=3 * (ENTRY_OVERHEAD + 100), max_age=600)
    for number in range(4):  # one more than the bytes allow: the oldest goes
        buffer.park("away", "shell", [b"%d" % number + b"x" * 99])
    buffer.park("other", "stdin", [b"y" * 100])
    assert [frames[0][:1] for _, frames in buffer.unpark("away")] == [b"2", b"3"]
    assert buffer.unpark("away") == []
    assert buffer.unpark("other") == [("stdin", [b"y" * 100])]
    assert buffer.parked_size == 0


def test_no_replies_are_kept_with_replay_off():
    buffer = ReplayBuffer(max_bytes=0, max_age=600)
    buffer.park("away", "shell", [b"reply"])
    assert buffer.unpark("away") == []
