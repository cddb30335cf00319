"""Run blocking work without freezing a gevent server.

Under `nbflask run` and gunicorn's gevent worker one OS thread serves every request and
websocket; a call that blocks it (an fsync, argon2's 0.15 s of CPU) stalls them all. Such
calls go to gevent's thread pool when gevent has patched threading, and run inline otherwise
(Flask's threaded development server, tests).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def run_blocking(function: Callable[..., T], *args: Any) -> T:
    if "gevent" in sys.modules:
        from gevent import get_hub, monkey

        if monkey.is_module_patched("threading"):
            return get_hub().threadpool.apply(function, args)
    return function(*args)
