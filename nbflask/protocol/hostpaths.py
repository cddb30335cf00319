"""Where a kernel host listens: its control and event sockets, its pid file and its start lock,
all in the private runtime folder. The host binds them; web workers find and connect to them.
"""

from __future__ import annotations

from pathlib import Path

from . import endpoints

SERVICE = "service"  # the name of the host `nbflask kernel-host` runs (`kernels.host: service`)


class HostPaths:
    """Where a kernel host listens and announces itself: `owner` is the pid of the server
    that owns it, so two servers of one user (one runtime folder) each have their own host
    and kernels, or SERVICE for the host `nbflask kernel-host` runs on its own."""

    def __init__(self, directory: Path, owner: int | str) -> None:
        self.directory = directory
        self.owner = owner
        self.control_file = directory / f"kernel-host-{owner}.ipc"
        self.events_file = directory / f"kernel-host-{owner}-events.ipc"
        self.info_file = directory / f"kernel-host-{owner}.json"
        self.lock_file = directory / f"kernel-host-{owner}.lock"
        endpoints.check_socket_path(self.events_file)  # the longest socket path of all

    @property
    def control_url(self) -> str:
        return f"ipc://{self.control_file}"

    @property
    def events_url(self) -> str:
        return f"ipc://{self.events_file}"
