"""Waiting for something to happen by checking for it, never by sleeping a set time: a fixed
sleep is too short on a loaded machine (the test fails for nothing) and too long on any other
(the suite crawls), and it hides what the test is waiting for."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 30, what: str = "the condition",
               every: float = 0.05) -> T:
    """The first truthy value of `check()`, asked every `every` seconds; after `timeout`
    seconds the test fails, naming `what` it waited for."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(every)
    return result
