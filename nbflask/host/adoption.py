"""What kernel hosts that died left behind: the next host adopts or reports their kernels.

Each kernel's connection file names the host that owns it (kernel.py). The kernels of an
owned host exited with it (ipykernel follows its parent), so each of its files names a kernel
that is gone. The service host's kernels outlive it: the next service host adopts every one
that still runs and answers, and reports the others. Kernels that are gone are remembered with
the reason, so REST answers for those ids say so instead of a bare 404; their files and
socket files are removed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent

from .. import runtime
from ..api_error import APIError
from ..protocol import endpoints, kernelspecs
from .kernel import CWD_KEY, HOST_KEY, PID_KEY, SERVICE_KEY, SESSIONS_KEY, Adopted

if TYPE_CHECKING:
    from .manager import KernelManager

log = logging.getLogger(__name__)

ADOPT_TIMEOUT = 10.0  # seconds a kernel left by a dead host has to answer kernel_info


def take_over(manager: KernelManager) -> None:
    """Deal with the connection files dead kernel hosts left behind, before serving: adopt
    into `manager` what can be, remember the rest in `manager.lost`."""
    left_behind = []
    for path in runtime.runtime_dir().glob("kernel-*.json"):
        if path.name.startswith("kernel-host-"):
            continue
        try:
            left = json.loads(path.read_text())
            owner = int(left.get(HOST_KEY, 0))
        except (OSError, ValueError, TypeError, AttributeError):
            left, owner = {}, 0
        if owner and (owner == os.getpid() or runtime.pid_alive(owner)):
            continue
        if isinstance(left, dict) and left.get(SERVICE_KEY) and not manager.service:
            continue  # waits for the service host, which runs on its own
        left_behind.append((path, left if isinstance(left, dict) else {}, owner))
    gevent.joinall([gevent.spawn(_take_over_one, manager, *found) for found in left_behind])


def _take_over_one(manager: KernelManager, path: Path, left: dict[str, Any], owner: int) -> None:
    kernel_id = path.stem.removeprefix("kernel-")
    if left.get(SERVICE_KEY) and manager.service:
        reason = _adopt(manager, kernel_id, path, left, owner)
        if reason is None:
            return
    else:
        reason = f"it was lost when its kernel host (pid {owner}) died"
    if isinstance(left.get("ip"), str) and left.get("transport") == "ipc":
        endpoints.remove_sockets(left)
    manager.lost[kernel_id] = reason
    path.unlink(missing_ok=True)
    log.warning("kernel %s: %s; removed %s", kernel_id, reason, path)


def _adopt(manager: KernelManager, kernel_id: str, path: Path, left: dict[str, Any],
           owner: int) -> str | None:
    """Adopt the running kernel a dead service host left in `path`; None when it is
    adopted, else why it is lost. Its pid must run the kernel of this very connection
    file (a pid may have been reused), and the kernel must answer kernel_info, signed
    with its key, within ADOPT_TIMEOUT."""
    pid = left.get(PID_KEY)
    gone = f"it was lost while no kernel host ran (its host, pid {owner}, died)"
    if not isinstance(pid, int) or not runtime.pid_alive(pid):
        return f"{gone}: its process had exited"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        command = []
    if str(path).encode() not in command:
        return f"{gone}: its process had exited (pid {pid} runs something else now)"
    connection = {key: value for key, value in left.items() if not key.startswith("nbflask_")}
    try:
        spec = kernelspecs.get(str(connection.get("kernel_name")))
    except kernelspecs.NoSuchKernelSpec:  # it could not be restarted: stop it
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return f"{gone}: its kernelspec {connection.get('kernel_name')!r} is gone, so it was stopped"
    cwd = left.get(CWD_KEY) if isinstance(left.get(CWD_KEY), str) else manager.working_dir(None)
    kernel = manager.new_kernel(kernel_id, spec, cwd, connection, path, Adopted(pid))
    kernel.started_at = time.monotonic()
    manager.follow_iopub(kernel)
    try:
        kernel.wait_ready(ADOPT_TIMEOUT)
        problem = None
    except APIError:
        problem = f"it did not answer kernel_info within {ADOPT_TIMEOUT:g} s"
    except (KeyError, TypeError, ValueError) as exc:  # a damaged file: no key, no ports
        problem = f"its connection file is unusable ({exc})"
    if problem is not None:
        kernel.monitor.kill(block=False)
        kernel.kill(kernel.process)
        return f"{gone}: {problem}, so it was stopped"
    kept = left.get(SESSIONS_KEY) if isinstance(left.get(SESSIONS_KEY), list) else []
    manager.adopt(kernel, [{**record, "kernel_id": kernel_id} for record in kept if isinstance(record, dict)])
    log.info("kernel %s (pid %d), left by kernel host %d, adopted", kernel_id, pid, owner)
    return None
