"""The kernel host answers declared operations only, its arguments bound to the declaration.

These drive `HostServer.handle` in this process, with the frames a worker's socket would send
(see nbflask.protocol.host_api for the wire), and read what it would send back.
"""

from __future__ import annotations

import json
import logging

import pytest

from nbflask.api_error import APIError
from nbflask.config import load_settings
from nbflask.host.server import HostServer
from nbflask.protocol import host_api
from nbflask.protocol.host_api import OPERATIONS, Missed
from nbflask.protocol.terminals import INPUT_WAIT


class Router:
    """Stands in for the host's ROUTER socket: keeps what is sent."""

    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []

    def send_multipart(self, frames: list[bytes]) -> None:
        self.sent.append(frames)


@pytest.fixture
def host(tmp_path) -> HostServer:
    return HostServer(load_settings({"store": {"root_dir": str(tmp_path)}}, environ={}), None)


def ask(host: HostServer, request: bytes | dict, *frames: bytes) -> tuple[dict, list[bytes]] | None:
    """The host's reply to one request (None if it sent none), and the raw frames after it."""
    router = Router()
    body = request if isinstance(request, bytes) else json.dumps(request).encode()
    host.handle(router, [b"worker", body, *frames])
    if not router.sent:
        return None
    [[identity, reply, *extra]] = router.sent
    assert identity == b"worker"
    return json.loads(reply), extra


@pytest.mark.parametrize(("request_body", "frames", "said"), [
    (b"{not json", [], "not JSON"),
    ({"op": "serve", "args": {}}, [], "no host operation is named 'serve'"),
    ({"op": ["get_kernel"], "args": {}}, [], "no host operation is named ['get_kernel']"),
    ({"op": "get_kernel", "args": {}}, [], "'get_kernel': missing a required argument: 'kernel_id'"),
    ({"op": "get_kernel", "args": {"kernel_id": "k", "kernel": "k"}}, [],
     "'get_kernel': got an unexpected keyword argument 'kernel'"),
    ({"op": "get_kernel", "args": ["k"]}, [], "'get_kernel': args must be a JSON object"),
    ({"op": "get_kernel", "args": {"kernel_id": "k"}}, [b"frame"], "'get_kernel' takes no raw frames"),
])
def test_a_request_that_fits_no_declaration_is_a_clear_400(host, request_body, frames, said, caplog):
    reply, extra = ask(host, request_body, *frames)
    assert reply.pop("message").startswith(f"bad kernel host request: {said}")
    assert reply == {"ok": False, "status": 400, "reason": "BadHostRequest"}
    assert extra == [] and not caplog.records  # no traceback: the request was wrong, not the host


def test_declared_errors_are_answered_as_they_are(host, caplog):
    reply, _ = ask(host, {"op": "interrupt_kernel", "args": {"kernel_id": "gone"}})
    assert reply == {"ok": False, "status": 404, "message": "Kernel does not exist: gone", "reason": None}
    assert OPERATIONS["interrupt_kernel"].declares(APIError(404, "", None))
    assert not caplog.records


def test_an_undeclared_error_is_answered_and_logged(host, monkeypatch, caplog):
    def refuse(kernel_id: str) -> None:
        raise APIError(418, "I am a teapot", "Teapot")

    monkeypatch.setattr(host.kernels, "interrupt", refuse)
    reply, _ = ask(host, {"op": "interrupt_kernel", "args": {"kernel_id": "k"}})
    assert reply == {"ok": False, "status": 418, "message": "I am a teapot", "reason": "Teapot"}
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == ("kernel host operation interrupt_kernel answered 418 Teapot, which it"
                                   " does not declare: I am a teapot")


def test_a_notice_gets_no_answer_even_when_it_does_not_fit(host, monkeypatch, caplog):
    heard = []
    monkeypatch.setattr(host.kernels, "progress", lambda *args: heard.append(args))
    progress = {"op": "progress", "args": {"kernel_id": "k", "connection_ids": ["c"]}}
    assert ask(host, progress, b"header") is None
    assert heard == [("k", ["c"], b"header")]
    assert ask(host, {"op": "progress", "args": {"kernel_id": "k"}}, b"header") is None
    assert ask(host, {"op": "executing", "args": {"kernel_id": "k", "cell_id": None}}) is None
    assert [record.getMessage() for record in caplog.records] == [
        "kernel host: a bad notice: 'progress': missing a required argument: 'connection_ids'",
        "kernel host: a bad notice: 'executing' takes one raw frame after the request, not 0"]
    assert len(heard) == 1


def test_replay_hands_over_the_missed_messages_as_raw_frames(host, monkeypatch):
    missed = Missed([[b"m1a", b"m1b"], [b"m2"]], "seen-id", 3, [("shell", [b"r1", b"r2"])])
    monkeypatch.setattr(host.kernels, "replay", lambda *args: missed.to_wire())
    reply, frames = ask(host, {"op": "replay", "args": {"kernel_id": "k", "session_id": "s",
                                                        "connection_id": "c"}})
    assert frames == [b"m1a", b"m1b", b"m2", b"r1", b"r2"]
    assert OPERATIONS["replay"].result_from_wire(reply["result"], frames) == missed


def test_park_takes_the_frames_after_the_request(host, monkeypatch):
    parked = []
    monkeypatch.setattr(host.kernels, "park", lambda *args: parked.append(args))
    reply, _ = ask(host, {"op": "park", "args": {"kernel_id": "k", "session_id": "s", "channel": "shell"}},
                   b"f1", b"f2")
    assert reply == {"ok": True, "result": None}
    assert parked == [("k", "s", "shell", [b"f1", b"f2"])]


def test_the_client_waits_as_long_as_each_operation_may_take():
    """The host waits for kernels to start, for `timeout` arguments, for room in a terminal."""
    startup = 60.0
    assert OPERATIONS["get_kernel"].timeout({"kernel_id": "k"}, startup) == 10.0
    assert OPERATIONS["start_kernel"].timeout({}, startup) == 75.0
    assert OPERATIONS["delete_session"].timeout({"session_id": "s"}, startup) == 75.0
    assert OPERATIONS["wait_settled"].timeout({"kernel_id": "k", "timeout": 3}, startup) == 13.0
    assert OPERATIONS["follow_run"].timeout({"timeout": 30.0}, startup) == 40.0
    assert OPERATIONS["terminal_input"].timeout({}, startup) == INPUT_WAIT + 10
    assert OPERATIONS["delete_terminal"].timeout({}, startup) == 20.0
    assert OPERATIONS["counts"].timeout({}, startup) == 5.0
    assert host_api.NOTICES["progress"].raw == "header"
