"""The one place that chooses between `zmq.green` and plain `zmq`.

Green sockets are right only when gevent has patched the socket module (gunicorn's gevent
workers, `nbflask run`, the kernel host); under `flask --app nbflask run` (real threads) they
hang when used from another thread, so plain zmq is used there. Everything else imports
`zmq` through this module, and every socket gets LINGER=0 so closing never blocks. Waiting
on sockets goes through `poller()` and `poll()`: zmq.green's own wait in select(), which
refuses descriptors of 1024 and more, and a gevent worker with a few dozen kernel websockets
has that many.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

_context: Any = None
_context_pid: int | None = None


def _gevent_patched() -> bool:
    if "gevent" not in sys.modules:
        return False
    from gevent import monkey

    return bool(monkey.is_module_patched("socket"))


def is_green() -> bool:
    """Whether this process runs on gevent (its sockets are green, its threads greenlets)."""
    return _gevent_patched()


def module() -> ModuleType:
    """`zmq.green` under gevent's monkey-patching, else plain `zmq`."""
    if _gevent_patched():
        import zmq.green as zmq_module
    else:
        import zmq as zmq_module
    return zmq_module


def context() -> Any:
    """The process's ZeroMQ context, made again after a fork (gunicorn forks workers)."""
    global _context, _context_pid
    if _context is None or _context_pid != os.getpid():
        _context = module().Context()
        _context_pid = os.getpid()
    return _context


def socket(kind: int, *, connect: str | None = None, bind: str | None = None, **options: int) -> Any:
    """A socket of `kind` with LINGER=0 and the given options, connected or bound."""
    sock = context().socket(kind)
    sock.setsockopt(module().LINGER, 0)
    for name, value in options.items():
        sock.setsockopt(getattr(module(), name), value)
    if connect:
        sock.connect(connect)
    if bind:
        sock.bind(bind)
    return sock


GREEN_SAFETY_WAKE = 1.33  # seconds: a green wait looks again at least this often (as zmq.green does)


def _green_poller_class() -> type:
    """zmq.Poller whose waits are gevent's poll (epoll underneath), not select: ZeroMQ's
    own poll tells what is ready, and each socket's ZMQ_FD, readable whenever its events
    change, wakes the greenlet."""
    import gevent.select
    import zmq

    class GreenPoller(zmq.Poller):
        def poll(self, timeout: float | None = None) -> list[tuple[Any, int]]:
            deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout / 1000
            while True:
                ready = super().poll(0)
                if ready or timeout == 0:
                    return ready
                wait = GREEN_SAFETY_WAKE if deadline is None else min(GREEN_SAFETY_WAKE,
                                                                      deadline - time.monotonic())
                if wait <= 0:
                    return []
                waiter = gevent.select.poll()
                for sock, _ in self.sockets:
                    waiter.register(sock.getsockopt(zmq.FD) if isinstance(sock, zmq.Socket) else sock,
                                    gevent.select.POLLIN)
                waiter.poll(wait * 1000)

    return GreenPoller


_green_poller: type | None = None


def poller() -> Any:
    """A Poller for this process's sockets: green (without select's limit) under gevent."""
    global _green_poller
    if not _gevent_patched():
        import zmq

        return zmq.Poller()
    if _green_poller is None:
        _green_poller = _green_poller_class()
    return _green_poller()


def recv_ready(sock: Any) -> list[Any]:
    """The multipart message a poll has just reported on `sock` (its only user), as Frames.

    A whole message is there once its first frame is, so this takes it without waiting,
    past zmq.green's wrapper: that one tries each frame, catches Again, and re-checks the
    socket's events after it, which was a fifth of a busy relay's time (docs/performance.md).
    """
    import zmq

    recv = zmq.Socket.recv  # the plain socket's: never waits with NOBLOCK
    frames = [recv(sock, zmq.NOBLOCK, copy=False)]
    while frames[-1].more:
        frames.append(recv(sock, zmq.NOBLOCK, copy=False))
    return frames


ZERO_COPY = 64 * 1024  # frames this big are passed on as views of ZeroMQ's buffer, not copied


def recv_frames(sock: Any) -> list[Any]:
    """The message a poll reported on `sock`: small frames as bytes, big ones (outputs) as
    memoryviews."""
    return [frame.bytes if len(frame) < ZERO_COPY else frame.buffer for frame in recv_ready(sock)]


def messages(sock: Any) -> Iterator[list[bytes]]:
    """Every message that arrives on `sock`, as bytes, for its one reader: a green wait on
    the socket, then `recv_ready` (zmq.green's recv_multipart was a third of the kernel
    host's time with ten clients on each of four kernels)."""
    waiting = poller()
    waiting.register(sock, module().POLLIN)
    while True:
        if waiting.poll(GREEN_SAFETY_WAKE * 1000):
            yield [frame.bytes for frame in recv_ready(sock)]


def poll(sock: Any, timeout: float) -> bool:
    """Whether `sock` has a message within `timeout` milliseconds (its own `poll()` would
    use zmq.green's select)."""
    waiting = poller()
    waiting.register(sock, module().POLLIN)
    return bool(waiting.poll(timeout))


def watch_connects(sock: Any, url: str) -> Any:
    """Connect `sock` to `url`; the PAIR socket returned gets an event each time the
    connection is made, again after every reconnect (a restarted kernel binds anew)."""
    monitor = sock.get_monitor_socket(module().EVENT_CONNECTED)
    sock.connect(url)
    return monitor


def wait_connected(monitor: Any, timeout: float) -> bool:
    """Whether a connection (see `watch_connects`) was made within `timeout` seconds; takes
    its event."""
    if not poll(monitor, timeout * 1000):
        return False
    monitor.recv_multipart()
    return True
