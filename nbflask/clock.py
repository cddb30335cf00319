"""Time as the Jupyter API writes it: timezone-aware UTC, ISO 8601 with a `Z`."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def isoformat(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_isoformat(text: str) -> datetime:
    """The inverse of `isoformat` (Python 3.10's fromisoformat does not read a `Z`)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
