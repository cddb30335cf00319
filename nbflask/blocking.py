"""Run blocking work without freezing a gevent server.

Under `nbflask run` and gunicorn's gevent worker one OS thread serves every request and
websocket; a call that blocks it (an fsync, argon2's 0.15 s of CPU) stalls them all. Such
calls go to gevent's thread pool when gevent has patched threading, and run inline otherwise
(Flask's threaded development server, tests).

CPU-heavy work goes there too (parsing a JSON5 settings document, validating, signing and
serialising a large notebook). A pool thread running Python code holds the GIL only for a
switch interval (`sys.getswitchinterval()`, 5 ms) at a time when the loop's thread wants it,
so the loop keeps serving other clients meanwhile, at the price of the work taking longer
while they are busy. Each time the loop's thread waits on a socket it gives the GIL up and
must wait a whole interval to get it back, so a request costs other clients an interval per
system call. A hand-off therefore lowers the process's interval to SWITCH_INTERVAL (1 ms),
which cut the median `/api/status` while a 200 KiB JSON5 document was parsed from 14 to 5 ms,
and while a 4.5 MB notebook was saved from 18 to 4 ms (benchmarks/loop_stall.py); with one
thread running Python the interval costs nothing. One long C call (`json.loads` without an
`object_hook`, `json.dumps`, base64) holds the GIL throughout wherever it runs: a thread
gains nothing there.

An exception raised in the pool comes back as a value and is raised again in the caller:
gevent prints a traceback for every exception that escapes a pool thread, which turned
every expected refusal of a store (409, 412, ...) into a traceback on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: The GIL switch interval while pool threads compete with the loop, in seconds.
SWITCH_INTERVAL = 0.001


def run_blocking(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in gevent's thread pool when gevent patched threading, else inline;
    what it raises is raised here."""
    if "gevent" in sys.modules:
        from gevent import get_hub, monkey

        if monkey.is_module_patched("threading"):
            if sys.getswitchinterval() > SWITCH_INTERVAL:
                sys.setswitchinterval(SWITCH_INTERVAL)
            outcome, value = get_hub().threadpool.apply(_outcome, (function, args))
            if outcome == "raised":
                raise value
            return value
    return function(*args)


def run_blocking_if(heavy: bool, function: Callable[..., T], *args: Any) -> T:
    """`run_blocking` for work that is heavy only sometimes (a large body, a large folder):
    light work runs inline, where the hand-off to a thread would cost more than it saves."""
    return run_blocking(function, *args) if heavy else function(*args)


def _outcome(function: Callable[..., T], args: tuple[Any, ...]) -> tuple[str, Any]:
    try:
        return "returned", function(*args)
    except Exception as exc:  # noqa: BLE001 - handed back to the caller, which raises it
        return "raised", exc
