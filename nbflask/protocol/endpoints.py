"""Where a kernel's five ZeroMQ sockets live: unix sockets in a private folder, or TCP ports.

Jupyter's connection files say `transport` (`ipc` or `tcp`), `ip` and one `*_port` number per
channel. Over `tcp` a channel is `tcp://<ip>:<port>`; over `ipc` it is the unix socket
`ipc://<ip>-<port>`, `ip` being a path prefix. nbflask's default is `ipc` with the prefix in
the private (0700) runtime folder: no port is open, and no other local user can reach the
kernel (over TCP on loopback, any of them can connect, and only the HMAC key stands in the way).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
LOOPBACK = "127.0.0.1"
# sun_path holds 108 bytes with its NUL on Linux (104 on the BSDs and macOS): keep under both.
MAX_UNIX_PATH = 103


def url(connection: dict[str, Any], channel: str) -> str:
    """The ZeroMQ address of `channel` (shell, iopub, stdin, control, hb)."""
    port = connection[channel + "_port"]
    if connection["transport"] == "ipc":
        return f"ipc://{connection['ip']}-{port}"
    return f"{connection['transport']}://{connection['ip']}:{port}"


def free_ports(count: int, ip: str = LOOPBACK) -> list[int]:
    """TCP ports free right now on `ip`: bound together so they differ, then released."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((ip, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class SocketPathTooLong(ValueError):
    """A unix socket path would not fit in `sun_path`."""


def check_socket_path(path: Path) -> None:
    """Refuse, with what to do, a socket path the OS cannot bind (kernel and host sockets all
    live in the runtime folder, so this is checked once, at start-up, for the longest)."""
    if len(str(path)) > MAX_UNIX_PATH:
        raise SocketPathTooLong(
            f"the runtime folder {path.parent} is too long a path for unix sockets ({len(str(path))}"
            f" characters for {path.name}, at most {MAX_UNIX_PATH}); set NBFLASK_RUNTIME_DIR to a"
            " shorter private folder")


def new_connection(transport: str, ipc_prefix: Path) -> dict[str, Any]:
    """The transport, ip and ports of a new kernel: five TCP ports on loopback, or five unix
    socket paths `<ipc_prefix>-1` ... `-5`."""
    if transport == "ipc":
        return {"transport": "ipc", "ip": str(ipc_prefix), **dict(zip(PORT_NAMES, range(1, 6), strict=True))}
    return {"transport": "tcp", "ip": LOOPBACK,
            **dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))}


def remove_sockets(connection: dict[str, Any]) -> None:
    """Remove the unix socket files of an ipc kernel (a killed kernel leaves them behind)."""
    if connection.get("transport") != "ipc":
        return
    for name in PORT_NAMES:
        try:
            os.unlink(f"{connection['ip']}-{connection[name]}")
        except FileNotFoundError:
            pass
