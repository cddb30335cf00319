"""What the objects in the container are: their names, and the entries their headers make.

Plain data, no requests: the reserved folders and Swift's limits on names, the times Swift
writes (X-Timestamp, listings), and the etag of a saved version, which is Swift's ETag (the
MD5 of the content) joined to the object's timestamp, so every save makes a new version even
when the bytes are the same, as the contract asks, and stat and listings compute the same one.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Literal

from ..base import SINGLE_CHECKPOINT, Conflict, Entry

#: The two reserved top-level folders: checkpoints, and chunked uploads in progress.
CHECKPOINTS = ".nbflask_checkpoints"
UPLOADS = ".nbflask_uploads"
RESERVED = (CHECKPOINTS, UPLOADS)
#: The content type of a folder marker.
DIRECTORY_TYPE = "application/directory"
#: The object metadata that keeps a file's creation time.
CREATED_HEADER = "X-Object-Meta-Created"
#: What listed folders report as their times (Swift listings carry none for pseudo-folders).
FOLDER_TIME = datetime(1970, 1, 2, tzinfo=timezone.utc)
#: Swift's limit on an object's name in bytes (see `swift capabilities`).
MAX_OBJECT_NAME = 1024
#: Room kept in the object name for the checkpoint folder and id of the longest path.
CHECKPOINT_NAME_ROOM = len(CHECKPOINTS) + 2 + 32
CHECKPOINT_ID = re.compile(rf"^(\d{{8}}T\d{{12}}Z-[0-9a-f]{{6}}|{SINGLE_CHECKPOINT})$")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def timestamp(value: str) -> datetime:
    """Swift's X-Timestamp ('1795681243.99978') to an aware datetime, exact to the microsecond."""
    seconds, _, fraction = value.partition(".")
    return datetime.fromtimestamp(int(seconds), timezone.utc).replace(
        microsecond=int((fraction + "000000")[:6])
    )


def listing_time(value: str) -> datetime:
    """A listing's last_modified ('2026-11-26T08:20:44.124310', UTC without zone)."""
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


def checkpoint_time(checkpoint_id: str) -> datetime:
    return datetime.strptime(checkpoint_id[:21], "%Y%m%dT%H%M%S%f").replace(tzinfo=timezone.utc)


def version_tag(md5: str, modified: datetime) -> str:
    """The etag of one saved version: the content's MD5 and the microsecond it was stored."""
    return f"{md5.strip(chr(34))}-{(modified - EPOCH) // timedelta(microseconds=1):x}"


def object_entry(path: str, kind: Literal["file", "directory"], headers: dict[str, str]) -> Entry:
    """The entry of a file object or a folder marker, from the object's HEAD or GET headers."""
    modified = timestamp(headers["x-timestamp"])
    created = headers.get(CREATED_HEADER.lower())
    is_file = kind == "file"
    return Entry(
        path=path,
        kind=kind,
        created=datetime.fromisoformat(created) if created else modified,
        last_modified=modified,
        size=int(headers.get("content-length", 0)) if is_file else None,
        etag=version_tag(headers["etag"], modified) if is_file else None,
    )


def plain_etag(value: str) -> str:
    """An ETag as Swift gives it: the MD5 hex, without quotes or a weak marker."""
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def check_if_match(entry: Entry, if_match: str | None) -> None:
    if if_match is not None and (entry.etag is None or entry.etag != plain_etag(if_match)):
        raise Conflict(f"{entry.path!r} changed since the version you have (If-Match {if_match})")

