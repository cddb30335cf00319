"""The user's private folders: the runtime folder (secrets, server info files, the kernel
host's socket) and the persistent data folder (notebook trust, the front-ends' state).

Everything here is readable by the owner only (folders 0700, files 0600), because it holds
what lets someone run code as the user: tokens, the cookie secret, kernel connection keys.
The runtime folder may be wiped at reboot; the data folder is not.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENV_RUNTIME_DIR = "NBFLASK_RUNTIME_DIR"
ENV_DATA_DIR = "NBFLASK_DATA_DIR"
ENV_OWNER = "NBFLASK_KERNEL_HOST_OWNER"


class UnsafeRuntimeDir(PermissionError):
    """The runtime folder is someone else's: they could replace its sockets and read its keys."""


def runtime_dir() -> Path:
    """Return the runtime folder, created 0700; refuses one others can read."""
    if os.environ.get(ENV_RUNTIME_DIR):
        path = Path(os.environ[ENV_RUNTIME_DIR])
    elif os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "nbflask"
    else:
        path = Path.home() / ".local" / "share" / "nbflask" / "runtime"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise UnsafeRuntimeDir(f"the runtime folder {path} belongs to another user (uid {info.st_uid});"
                               f" set {ENV_RUNTIME_DIR} to a folder of your own")
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path


def data_dir() -> Path:
    """The persistent per-user folder (0700): $NBFLASK_DATA_DIR or $XDG_DATA_HOME/nbflask."""
    if os.environ.get(ENV_DATA_DIR):
        path = Path(os.environ[ENV_DATA_DIR])
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(base) / "nbflask"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def host_owner() -> int:
    """The pid of the server process whose kernel host this process uses: itself, or the
    gunicorn master that set NBFLASK_KERNEL_HOST_OWNER before forking its workers. Its
    sockets and lock files in the runtime folder are named after it."""
    return int(os.environ.get(ENV_OWNER) or os.getpid())


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically with mode 0600 from the first byte on."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_once(path: Path, nbytes: int) -> bytes:
    """Read a random secret at `path`, creating it 0600 from the first byte if it is missing.

    The new secret is written whole to a private temp file and hard-linked into place, so
    workers starting together agree on one secret and none ever reads a half-written one.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(nbytes))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


def secret(name: str, nbytes: int = 32) -> bytes:
    """A persistent random secret shared by every worker of this deployment."""
    return create_once(runtime_dir() / name, nbytes)


PRIVATE_ENV = ("NBFLASK_AUTH_TOKEN", ENV_OWNER)


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a process the server starts for its user (a kernel, a terminal's
    shell): ours plus `extra`, without the server's own secrets."""
    env = {**os.environ, **extra}
    for private in PRIVATE_ENV:
        env.pop(private, None)
    return env


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not count: it has exited but waits to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return status != "Z"


def info_path(pid: int | None = None) -> Path:
    return runtime_dir() / f"server-{pid or os.getpid()}.json"


def write_server_info(info: dict[str, Any]) -> Path:
    path = info_path(info["pid"])
    write_private(path, json.dumps(info, indent=1).encode())
    return path


def running_servers() -> Iterator[dict[str, Any]]:
    """Info of every live server; files left by servers that died are pruned."""
    for path in sorted(runtime_dir().glob("server-*.json")):
        try:
            info = json.loads(path.read_text())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if pid_alive(pid):
            yield info
        else:
            path.unlink(missing_ok=True)
