"""A kernel websocket's client back with the `session_id` it had: what it missed while away
first, then live messages, each once and in order.

The kernel host kept what the kernel said on iopub meanwhile (host/replay.py). The pump holds
live iopub back from before it joins the kernel's iopub until that replay has gone out. The
replay ends just before the first held message and names the last message the session had
seen: held messages up to it were delivered by an old connection while this one subscribed.
Live messages that the replay already had (the host's socket may be ahead of ours) are
recognised by id. A replay that lost messages (the buffer keeps only so much) says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..protocol import wire
from . import pending

if TYPE_CHECKING:
    from .kernel import Relay

REPLAY_GAP = "nbflask_replay_gap"  # iopub msg_type telling a client that replay lost messages


def msg_id(frames: list[Any]) -> str:
    """The msg_id of a kernel message ("" if its header is unreadable)."""
    try:
        return str(wire.loads_object(bytes(wire.split(frames)[2][0]), "header").get("msg_id"))
    except wire.WireError:
        return ""


def gap_notices(dropped: int, after: list[list[Any]], session_id: str) -> list[wire.Message]:
    """What tells a client back from away that the replay lost `dropped` messages: a
    REPLAY_GAP message (for clients of our own), and a stream to stderr where Jupyter's
    front-ends show it: in the output of the first cell run the messages after the gap
    (`after`) belong to, which is where output went missing (JupyterLab shows only the outputs
    of requests it sent, so a notice with no parent would be dropped)."""
    reason = (f"{dropped} older iopub messages of this kernel were dropped from the replay"
              " buffer (kernels.replay_buffer_bytes / replay_buffer_age)")
    notice = wire.new_message(REPLAY_GAP, {"dropped": dropped, "reason": reason}, session=session_id)
    parents = (pending.parent_header(frames) for frames in after)
    parent = next((p for p in parents if p and p.get("msg_type") == "execute_request"), None)
    text = (f"[nbflask: {dropped} output messages of this kernel were lost while this client was away:"
            " more than the server's replay buffer keeps]\n")
    stream = wire.new_message("stream", {"name": "stderr", "text": text}, session=session_id, parent=parent)
    return [notice, stream]


class Resume:
    """A relay's live iopub while its client resumes a session: held back during the replay,
    then passed on, the messages the replay already had left out."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.held: list[list[bytes]] | None = None  # live iopub held back while replaying
        self.replayed: set[str] = set()  # msg_ids replayed that live iopub may bring again

    def hold(self) -> None:
        """Hold live iopub back from now on, until `replay` has handed over what was missed."""
        self.held = []

    def goes_live(self, frames: list[bytes]) -> bool:
        """Whether a live iopub message goes out now: not while the replay comes first (it is
        held), and not if the replay already had it."""
        if self.held is not None:
            self.held.append(frames)
            return False
        if self.replayed:  # live messages the replay already had come first, once
            if msg_id(frames) in self.replayed:
                return False
            self.replayed.clear()
        return True

    def replay(self) -> None:
        """Hand the client what it missed while away (and replies due to the session's
        connection that left), then the live messages held meanwhile: nothing twice, nothing
        out of order."""
        relay = self.relay
        first_live = msg_id(self.held[0]) if self.held else None
        # Live messages are still held meanwhile (the shared feed's keep coming).
        messages, seen, dropped, replies = relay.host.replay(relay.kernel_id, relay.client_session,
                                                             relay.connection_id, first_live)
        held, self.held = self.held or [], []
        held_ids = [msg_id(frames) for frames in held]
        skip = held_ids.index(seen) + 1 if seen in held_ids else 0
        if dropped:
            for notice in gap_notices(dropped, [*messages, *held[skip:]], relay.session_id):
                relay.send("iopub", notice.parts())
        for frames in messages:
            self.replayed.add(msg_id(frames))
            relay.deliver("iopub", frames)
        for channel, frames in replies:  # due to the session's connection that left
            relay.deliver(channel, frames)
        for frames, held_id in zip(held[skip:], held_ids[skip:], strict=True):
            if held_id not in self.replayed:  # only if the host could not place it
                relay.deliver("iopub", frames)
        while self.held:  # the feed's, come while those went out (a write may yield)
            later, self.held = self.held, []
            for frames in later:
                if msg_id(frames) not in self.replayed:
                    relay.deliver("iopub", frames)
            held.extend(later)
        self.held = None
        if held:
            self.replayed.clear()  # live messages after the held ones are all new
