"""The container as objects and pseudo-folders under the store's prefix: what the parts of
the store (files and folders, checkpoints, chunked uploads) build on.

API paths become object names here, objects are looked up (HEAD, listings), one file object
is written (If-Match checked by a HEAD just before the PUT: Swift has none), copied and
deleted. Within one process a lock per path makes a change exact; between processes or
hosts it is best-effort for writers racing between the HEAD and the PUT. A PUT itself is
atomic, so a save that fails half-way leaves the previous version.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from swiftclient.client import Connection

from ...config import SwiftSettings
from ..base import Conflict, Entry, InvalidPath, NotFound, Store, StoreError, Unavailable, normalize_path
from .client import SwiftClient
from .layout import (
    CHECKPOINT_NAME_ROOM,
    CHECKPOINTS,
    CREATED_HEADER,
    FOLDER_TIME,
    MAX_OBJECT_NAME,
    RESERVED,
    UPLOADS,
    object_entry,
    plain_etag,
    timestamp,
)

#: Locks shared out by hash of the path: compare-and-swap is exact within one process.
LOCK_STRIPES = 64


class SwiftObjects(Store):
    """One container's objects, named from API paths, for the Swift store to build on."""

    def __init__(self, settings: SwiftSettings) -> None:
        """A store on the container `settings` name (checked by `load_settings`, or as they are)."""
        super().__init__()
        self.client = SwiftClient(settings)
        self.container = settings.container
        self.prefix = settings.prefix + "/" if settings.prefix else ""
        self._locks: dict[int, threading.Lock] = {}

    @contextmanager
    def _locked(self, *paths: str) -> Iterator[None]:
        """Serialise this process's changes to these paths (stripes taken in order: no deadlock).

        The locks are made on first use, after gevent (if any) has patched `threading`, so a
        greenlet waiting for one yields to the others instead of blocking the worker;
        `dict.setdefault` makes that creation atomic.
        """
        locks = [
            self._locks.setdefault(stripe, threading.Lock())
            for stripe in sorted({hash(path) % LOCK_STRIPES for path in paths})
        ]
        for lock in locks:
            lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(locks):
                lock.release()

    # ------------------------------------------------------------------ names

    def _path(self, path: str) -> str:
        """Check an API path, refusing the reserved checkpoint folder and over-long names."""
        path = normalize_path(path)
        top = path.split("/", 1)[0]
        if top in RESERVED:
            raise InvalidPath(f"invalid path {path!r}: '{top}' is reserved for checkpoints and uploads")
        size = len((self.prefix + path).encode())
        if size > MAX_OBJECT_NAME - CHECKPOINT_NAME_ROOM:
            raise InvalidPath(
                f"invalid path {path!r}: {size} bytes is too long for Swift"
                f" (at most {MAX_OBJECT_NAME - CHECKPOINT_NAME_ROOM})"
            )
        return path

    def _object(self, path: str) -> str:
        return self.prefix + path

    def _folder(self, path: str) -> str:
        """The name prefix of everything inside the folder (the root folder is the prefix)."""
        return self.prefix + path + "/" if path else self.prefix

    def _checkpoint_folder(self, path: str) -> str:
        return f"{self.prefix}{CHECKPOINTS}/{path}/"

    def _upload_folder(self, path: str) -> str:
        return f"{self.prefix}{UPLOADS}/{path}/"

    def _destination(self, name: str) -> str:
        return f"/{self.container}/{name}"

    # ------------------------------------------------------------------ reading

    def _head(self, name: str) -> dict[str, str] | None:
        try:
            return self.client.call(
                f"HEAD '{name}'", lambda c: c.head_object(self.container, name), NotFound(name)
            )
        except NotFound:
            return None

    def _listing(self, folder: str, *, delimiter: str | None = "/", limit: int | None = None) -> list[dict]:
        what = f"listing '{folder}'"
        full = limit is None
        return self.client.call(
            what,
            lambda c: c.get_container(
                self.container, prefix=folder, delimiter=delimiter, limit=limit, full_listing=full
            )[1],
        )

    def _file_entry(self, path: str, headers: dict[str, str]) -> Entry:
        return object_entry(path, "file", headers)

    def _find(self, path: str) -> Entry | None:
        """The entry at a checked path, or None: a file object, a folder marker, or a prefix."""
        if not path:
            return Entry(path="", kind="directory", created=FOLDER_TIME, last_modified=FOLDER_TIME)
        headers = self._head(self._object(path))
        if headers is not None:
            return self._file_entry(path, headers)
        return self._find_folder(path)

    def _find_folder(self, path: str) -> Entry | None:
        """The folder at a non-root path: its marker, or objects under its prefix; else None."""
        folder = self._folder(path)
        marker = self._head(folder)
        if marker is not None:
            return object_entry(path, "directory", marker)
        if self._listing(folder, delimiter=None, limit=1):
            return Entry(path=path, kind="directory", created=FOLDER_TIME, last_modified=FOLDER_TIME)
        return None

    def _existing(self, path: str) -> Entry:
        entry = self._find(path)
        if entry is None:
            raise NotFound(f"no such file or directory: {path!r}")
        return entry

    def _existing_file(self, path: str) -> Entry:
        entry = self._existing(path)
        if entry.kind != "file":
            raise InvalidPath(f"{path!r} is a directory, not a file")
        return entry

    def _existing_folder(self, path: str) -> Entry:
        entry = self._existing(path)
        if entry.kind != "directory":
            raise InvalidPath(f"{path!r} is a file, not a directory")
        return entry

    # ------------------------------------------------------------------ writing

    def _has_folder(self, path: str) -> bool:
        """Whether a folder is at `path`: one listing sees its marker or anything under it."""
        return bool(self._listing(self._folder(path), delimiter=None, limit=1))

    def _check_parent(self, path: str) -> None:
        parent = posixpath.dirname(path)
        if parent and not self._has_folder(parent):
            if self._head(self._object(parent)) is not None:
                raise InvalidPath(f"{parent!r} is a file, not a directory")
            raise NotFound(f"no such directory: {parent!r}")

    def _put(self, name: str, data: bytes, headers: dict[str, str], content_type: str | None = None) -> str:
        """PUT an object from a seekable body (so swiftclient can retry it) with its MD5 as ETag.

        Swift checks the body against that ETag (422 and nothing stored on a mismatch) and
        answers with it, which is returned.
        """
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()

        def request(conn: Connection) -> str:
            return conn.put_object(
                self.container,
                name,
                io.BytesIO(data),
                content_length=len(data),
                etag=etag,
                content_type=content_type,
                headers=headers,
            )

        return self.client.call(f"PUT '{name}'", request)

    def _write(self, path: str, data: bytes, if_match: str | None) -> tuple[Entry, bool]:
        created, new = self._replaceable(path, if_match)
        md5 = self._put(self._object(path), data, {CREATED_HEADER: created})
        return self._saved(path, lambda headers: headers.get("etag", "").strip('"') == md5), new

    def _replaceable(self, path: str, if_match: str | None) -> tuple[str, bool]:
        """Check that a file may be saved at `path` (If-Match, not a folder, parent exists);
        returns the creation time the saved object keeps, and whether the file is new."""
        current = self._head(self._object(path))
        if if_match is not None and (
            current is None or self._file_entry(path, current).etag != plain_etag(if_match)
        ):
            raise Conflict(f"{path!r} changed since the version you have (If-Match {if_match})")
        if current is None:
            if self._has_folder(path):
                raise InvalidPath(f"{path!r} is a directory, not a file")
            self._check_parent(path)
            return datetime.now(timezone.utc).isoformat(), True
        return current.get(CREATED_HEADER.lower()) or timestamp(current["x-timestamp"]).isoformat(), False

    def _saved(self, path: str, is_new: Callable[[dict[str, str]], bool]) -> Entry:
        """The entry of what was just saved, once Swift shows that version (`is_new` tells)."""
        headers = self._head(self._object(path))
        if headers is None or not is_new(headers):
            # A replicated Swift may answer a HEAD right after a PUT from a stale replica.
            raise Unavailable(
                f"swift store: {path!r} was saved, but Swift does not show the new version yet;"
                " reload it before saving again"
            )
        return self._file_entry(path, headers)

    def _delete_objects(self, names: list[str]) -> None:
        """Delete objects one by one; one already gone (a racing delete) is fine."""
        for name in names:
            try:
                self.client.call(
                    f"DELETE '{name}'", lambda c, n=name: c.delete_object(self.container, n), NotFound(name)
                )
            except NotFound:
                pass

    def _names_under(self, folder: str) -> list[str]:
        return [item["name"] for item in self._listing(folder, delimiter=None)]

    def _copy(
        self,
        source: str,
        target: str,
        missing: StoreError | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.client.call(
            f"COPY '{source}' to '{target}'",
            lambda c: c.copy_object(self.container, source, self._destination(target), headers=headers),
            missing,
        )
