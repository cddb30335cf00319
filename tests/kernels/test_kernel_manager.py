"""The kernel host's record of a kernel that is still starting (KernelManager alone, no kernel
process: the start is a greenlet that has not finished)."""

from __future__ import annotations

import gevent

from nbflask.config import load_settings
from nbflask.host.manager import KernelManager

KERNEL = "k1"


def test_a_kernel_shut_down_while_it_starts_releases_whoever_waits_for_its_start(tmp_path):
    """A websocket's relay waits for its kernel's start before relaying; a kernel deleted
    meanwhile (a client that opens a notebook and closes it at once) must end that wait, not
    leave it to its timeout, which also held the web worker's stop for 10 s."""
    published: list[dict] = []
    manager = KernelManager(load_settings({"store": {"root_dir": str(tmp_path)}}, environ={}),
                            lambda topic, event, frames=(): published.append(event))
    kernel = manager.new_kernel(KERNEL, spec=None, cwd=str(tmp_path), connection={},
                                connection_file=tmp_path / "kernel.json")
    kernel.execution_state = "starting"
    kernel.watcher = gevent.spawn(gevent.sleep, 600)  # the start, waiting for the kernel to answer
    manager.kernels[KERNEL] = kernel
    relay = gevent.spawn(manager.wait_settled, KERNEL, 600)
    gevent.idle()
    assert not relay.ready()  # waiting for the start
    manager.shutdown(KERNEL)
    gevent.idle()
    assert relay.ready() and relay.value is True
    assert (kernel.execution_state, kernel.reason) == ("dead", "shut down while starting")
    assert published == [{"event": "shutdown"}]
    assert kernel.watcher is None
