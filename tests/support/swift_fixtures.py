"""A real OpenStack Swift for the tests: one per session, a fresh container per test.

`tests/support/swift/start-swift.sh` builds a single-node Swift (proxy with tempauth, account,
container and object servers) on free loopback ports in about 3 s, from a venv shared across
runs (made by `tests/support/swift/install-swift.sh` on first use). The servers `setsid()` away from
pytest, so a watchdog (`SWIFT_WATCH_PID`) stops them even if pytest is killed.

Failure tests break the servers on purpose through `SwiftServer` (stop, kill, pause); every
test that did so gets them healed afterwards, so the next test sees a working Swift.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from swiftclient.client import ClientException, Connection
from waiting import wait_until

SCRIPTS = Path(__file__).parent / "swift"
SERVERS = ("proxy", "account", "container", "object")
HEAL_PROBE = "heal-probe"  # the container `heal` writes through to see every server answer


def _supports_xattrs(folder: Path) -> bool:
    """The object server keeps metadata in user xattrs (tmpfs lacks them before Linux 6.6)."""
    probe = folder / ".xattr-probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.swift.probe", b"1")
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


class SwiftServer:
    """One running Swift started by start-swift.sh, with levers for failure tests."""

    def __init__(self, folder: Path, **env: str) -> None:
        self.folder = folder
        self.extra_env = env
        self.env: dict[str, str] = {}
        self.disturbed = False

    @property
    def auth_url(self) -> str:
        return self.env["ST_AUTH"]

    def _run(self, script: str, *args: str, **env: str) -> str:
        result = subprocess.run(
            [str(SCRIPTS / script), *args],
            env={**os.environ, **self.extra_env, **env},
            capture_output=True,
            text=True,
            timeout=180,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{script} failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return result.stdout

    def start(self) -> None:
        """Start (or, for a configured folder, restart only the dead servers) and wait for ready."""
        out = self._run("start-swift.sh", SWIFT_TEST_DIR=str(self.folder), SWIFT_WATCH_PID=str(os.getpid()))
        self.env = dict(re.findall(r"^export (\w+)=(.*)$", out, re.MULTILINE))

    def stop(self) -> None:
        self._run("stop-swift.sh", str(self.folder))

    def options(self, container: str, **extra: Any) -> dict[str, Any]:
        """SwiftStore options for this server and a container: short timeouts for tests."""
        return {
            "auth_url": self.auth_url,
            "user": self.env["ST_USER"],
            "key": self.env["ST_KEY"],
            "container": container,
            "timeout": 3,
            "retries": 1,
            **extra,
        }

    def pid(self, server: str) -> int:
        return int((self.folder / "run" / f"{server}.pid").read_text())

    def signal(self, server: str, signum: int) -> None:
        """Send a signal to one server (SIGSTOP = hung, SIGKILL = crashed, SIGTERM = stopped)."""
        self.disturbed = True
        os.kill(self.pid(server), signum)

    def kill(self, server: str) -> None:
        """Stop one server for good (until `heal`), and wait until its port is closed."""
        pid = self.pid(server)
        self.signal(server, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self._alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _alive(self, pid: int) -> bool:
        try:
            return str(self.folder) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False

    def log(self, server: str) -> str:
        return (self.folder / "log" / f"{server}.log").read_text(errors="replace")

    def heal(self) -> None:
        """Resume paused servers and restart dead ones, after a failure test."""
        if not self.disturbed:
            return
        for server in SERVERS:
            try:
                os.kill(self.pid(server), signal.SIGCONT)
            except (OSError, ValueError):
                pass
        self.start()
        # The proxy skips a backend for error_suppression_interval (1 s) after errors to it.
        wait_until(self._serves_objects, timeout=15, what="the proxy reaching every Swift server again")
        self.disturbed = False

    def _serves_objects(self) -> bool:
        """Whether an object goes through the proxy to every server: the account server (it
        checks the account), the container server and the object server."""
        connection = Connection(self.auth_url, self.env["ST_USER"], self.env["ST_KEY"], retries=0, timeout=3)
        try:
            connection.put_container(HEAL_PROBE)
            connection.put_object(HEAL_PROBE, "probe", b"probe")
            connection.get_object(HEAL_PROBE, "probe")
            connection.delete_object(HEAL_PROBE, "probe")
        except (ClientException, OSError):  # requests' ConnectionError is an OSError
            return False
        finally:
            connection.close()
        return True


def start_swift(folder_factory: pytest.TempPathFactory, name: str, **env: str) -> SwiftServer:
    """Start a Swift in a folder that can hold xattrs (the pytest tmp folder if it can)."""
    folder = folder_factory.mktemp(name)
    if not _supports_xattrs(folder):
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nbflask"
        cache.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=cache))
        if not _supports_xattrs(folder):
            env.setdefault("SWIFT_OBJECT_BACKEND", "mem")
    server = SwiftServer(folder, **env)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"a real Swift could not be started for the tests: {exc}")
    return server


@pytest.fixture(scope="session")
def swift_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftServer]:
    server = start_swift(tmp_path_factory, "swift")
    yield server
    server.stop()


@pytest.fixture
def swift_container(swift_server: SwiftServer) -> Iterator[str]:
    """A fresh container name per test (the store creates it on first use)."""
    yield "test-" + uuid.uuid4().hex[:12]
    swift_server.heal()


@pytest.fixture
def swift_options(swift_server: SwiftServer, swift_container: str) -> dict[str, Any]:
    return swift_server.options(swift_container)
