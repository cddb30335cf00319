"""The one place that chooses between `zmq.green` and plain `zmq`.

Green sockets are right only when gevent has patched the socket module (gunicorn's gevent
workers, `nbflask run`, the kernel host); under `flask --app nbflask run` (real threads) they
hang when used from another thread, so plain zmq is used there. Everything else imports
`zmq` through this module, and every socket gets LINGER=0 so closing never blocks.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

_context: Any = None
_context_pid: int | None = None


def _gevent_patched() -> bool:
    if "gevent" not in sys.modules:
        return False
    from gevent import monkey

    return bool(monkey.is_module_patched("socket"))


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
