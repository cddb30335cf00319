"""`nbflask doctor URL`: check a running deployment from outside, as a browser meets it.

One line per check, PASS or FAIL with the fix; `diagnose` says whether every check passed.
It never changes the deployment beyond starting one kernel and deleting it again.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit, urlunsplit

from .checks import CHECKS
from .client import Client, DoctorError, Target
from .visit import Result, Visit

__all__ = ["DoctorError", "Result", "diagnose"]


def _split_token(url: str) -> tuple[str, str | None]:
    """The URL without its query, and the `?token=` it carried (the link servers print)."""
    parts = urlsplit(url)
    token = parse_qs(parts.query).get("token", [None])[0]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), token


def diagnose(url: str, *, token: str | None = None, password: str | None = None, cafile: str | None = None,
             timeout: float = 10, say: Callable[[str], None] = print) -> bool:
    """Run every check against `url`, saying each result as it comes; True if all passed.

    With a token or a password the doctor logs in as a browser would, and checks a kernel.
    """
    url, linked_token = _split_token(url)
    client = Client(Target.parse(url), cafile=cafile, timeout=timeout)
    visit = Visit(client, token=token or linked_token, password=password)
    passed = True
    for check in CHECKS:
        for result in _results(check, visit):
            say(result.line())
            passed = passed and result.passed
            if result.blocking:
                say("      (the checks after this one need it fixed first)")
                return False
    return passed


def _results(check: Callable[[Visit], Iterator[Result]], visit: Visit) -> Iterator[Result]:
    """The check's results; a connection that breaks mid-check is its failure, not a traceback."""
    name = check.__name__.removeprefix("check_")
    try:
        yield from check(visit)
    except (OSError, http.client.HTTPException) as exc:
        yield Result(name, False, f"the connection failed: {exc or type(exc).__name__}",
                     "see the proxy's and the server's logs", blocking=True)
