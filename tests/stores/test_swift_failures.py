"""When Swift fails: down, hung, answering 5xx, cut off mid-save, or with an expired token.

Each test breaks the real servers (kill, SIGSTOP) and checks what the store reports: a 503 or
504 store error naming the store and the request that failed, within the configured timeout,
nothing already stored damaged, and a later save that succeeds once Swift is back.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from swift_fixtures import SwiftServer, start_swift

from nbflask.config import SwiftSettings
from nbflask.stores.base import StoreError, TimedOut, Unavailable
from nbflask.stores.swift import SwiftStore

pytestmark = pytest.mark.slow


@pytest.fixture
def store(swift_options: dict[str, Any]) -> SwiftStore:
    return SwiftStore(SwiftSettings(**{**swift_options, "timeout": 1, "retries": 1}))


def test_swift_down_is_503_naming_the_store_and_then_saves_again(
    store: SwiftStore, swift_server: SwiftServer
) -> None:
    store.write("nb.ipynb", b"v1")
    swift_server.kill("proxy")
    with pytest.raises(Unavailable) as caught:
        store.write("nb.ipynb", b"v2")
    message = caught.value.message
    assert f"swift store (container '{store.container}'" in message
    assert "'nb.ipynb' failed: cannot reach Swift (ConnectionError" in message
    with pytest.raises(Unavailable):
        store.list("")
    swift_server.heal()
    assert store.read("nb.ipynb") == b"v1"
    store.write("nb.ipynb", b"v2")
    assert store.read("nb.ipynb") == b"v2"


def test_a_hung_swift_is_504_after_the_timeout(
    swift_options: dict[str, Any], swift_server: SwiftServer
) -> None:
    store = SwiftStore(SwiftSettings(**{**swift_options, "timeout": 1, "retries": 0}))
    store.write("nb.ipynb", b"v1")
    swift_server.signal("proxy", signal.SIGSTOP)
    with pytest.raises(TimedOut) as caught:
        store.read("nb.ipynb")
    assert "GET 'nb.ipynb' failed: no answer within 1 s" in caught.value.message
    with pytest.raises(TimedOut):
        store.write("nb.ipynb", b"v2")
    swift_server.heal()
    assert store.read("nb.ipynb") == b"v1"


def test_a_slow_backend_is_504_and_the_old_version_stays(
    swift_options: dict[str, Any], swift_server: SwiftServer
) -> None:
    """The proxy answers, but the object server behind it does not (it would wait 10 s)."""
    store = SwiftStore(SwiftSettings(**{**swift_options, "timeout": 1, "retries": 0}))
    store.write("nb.ipynb", b"v1")
    swift_server.signal("object", signal.SIGSTOP)
    with pytest.raises(TimedOut, match="'nb.ipynb' failed: no answer within 1 s"):
        store.write("nb.ipynb", b"v2")
    assert [entry.name for entry in store.list("")] == ["nb.ipynb"]  # listings need no object server
    swift_server.heal()
    assert store.read("nb.ipynb") == b"v1"


def test_5xx_from_swift_is_503_with_swift_s_answer(store: SwiftStore, swift_server: SwiftServer) -> None:
    """With the object server down the proxy answers 503; listings (container server) still work."""
    store.write("nb.ipynb", b"v1")
    swift_server.kill("object")
    with pytest.raises(Unavailable) as caught:
        store.read("nb.ipynb")
    assert "GET 'nb.ipynb' failed: Swift answered 503" in caught.value.message
    assert [entry.name for entry in store.list("")] == ["nb.ipynb"]
    with pytest.raises(Unavailable, match="Swift answered 503"):
        store.write("nb.ipynb", b"v2")
    swift_server.heal()
    assert store.read("nb.ipynb") == b"v1"
    store.write("nb.ipynb", b"v2")
    assert store.read("nb.ipynb") == b"v2"


def test_container_server_down_is_503(store: SwiftStore, swift_server: SwiftServer) -> None:
    store.write("nb.ipynb", b"v1")
    swift_server.kill("container")
    with pytest.raises(Unavailable, match="Swift answered 503"):
        store.write("nb.ipynb", b"v2")
    swift_server.heal()
    assert store.read("nb.ipynb") == b"v1"


def test_a_save_cut_off_half_way_leaves_the_previous_version(
    store: SwiftStore, swift_server: SwiftServer
) -> None:
    """Kill the proxy while the object server is receiving a big save: the old object stays."""
    old = b"previous version"
    store.write("big.ipynb", old)
    object_server = swift_server.pid("object")
    failure: list[BaseException] = []

    def save() -> None:
        try:
            store.write("big.ipynb", b"x" * (64 << 20))
        except StoreError as exc:
            failure.append(exc)

    saver = threading.Thread(target=save)
    saver.start()
    assert _wait_for(lambda: _receiving(object_server), 30), "the upload never reached the object server"
    swift_server.kill("proxy")
    saver.join(30)
    assert not saver.is_alive()
    assert failure and isinstance(failure[0], Unavailable)
    swift_server.heal()
    assert store.read("big.ipynb") == old
    assert store.stat("big.ipynb").size == len(old)


def _receiving(pid: int) -> bool:
    """True once the object server is writing a received upload to disk.

    Swift writes uploads to an O_TMPFILE in the object's folder (no name until the upload is
    complete: `/proc` shows it as `.../#123 (deleted)`), so look at the server's open files.
    """
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if "/objects/" in os.readlink(fd) and fd.stat().st_size > 0:
                return True
        except OSError:
            continue
    return False


def _wait_for(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


# ---------------------------------------------------------------------------- tokens

AUTH_LINE = re.compile(r"GET /auth/v1\.0 HTTP/1\.0 (\d{3}) .*python-swiftclient")


@pytest.fixture(scope="module")
def short_token_swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftServer]:
    """A Swift of its own whose tempauth tokens expire after 3 s."""
    server = start_swift(tmp_path_factory, "swift-short-token", SWIFT_TOKEN_LIFE="3")
    yield server
    server.stop()


def _auth_answers(server: SwiftServer, expected: int) -> list[str]:
    """The status of every login the proxy logged, waiting briefly for its log to catch up."""
    answers: list[str] = []

    def enough() -> bool:
        answers[:] = AUTH_LINE.findall(server.log("proxy"))
        return len(answers) >= expected

    _wait_for(enough, 5)
    return answers


def test_an_expired_token_is_renewed_once_and_the_request_succeeds(short_token_swift: SwiftServer) -> None:
    store = SwiftStore(SwiftSettings(**short_token_swift.options("tokens")))
    before = len(_auth_answers(short_token_swift, 0))
    store.write("nb.ipynb", b"v1")
    assert _auth_answers(short_token_swift, before + 1)[before:] == ["200"]
    time.sleep(4)  # on purpose: past the token's life (3 s); time passing is what expires it
    assert store.read("nb.ipynb") == b"v1"
    store.write("nb.ipynb", b"v2")
    assert _auth_answers(short_token_swift, before + 2)[before:] == ["200", "200"]
    assert re.search(r"GET /v1/AUTH_test/tokens/nb\.ipynb HTTP/1\.0 401", short_token_swift.log("proxy"))
    assert store.read("nb.ipynb") == b"v2"


def test_a_refused_login_is_tried_once_more_then_reported(short_token_swift: SwiftServer) -> None:
    store = SwiftStore(SwiftSettings(**{**short_token_swift.options("tokens"), "key": "wrong"}))
    before = len(_auth_answers(short_token_swift, 0))
    with pytest.raises(Unavailable) as caught:
        store.list("")
    assert "Swift refused the login of 'test:tester' (401)" in caught.value.message
    assert _auth_answers(short_token_swift, before + 2)[before:] == ["401", "401"]
