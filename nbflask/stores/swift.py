"""Notebooks in OpenStack Swift (or Rackspace Cloud Files): one store shared by many web hosts.

Layout in the container, under the optional `prefix`:

- a file is one object named by its API path (`dir/My Notebook.ipynb`), so `swift list` and
  `swift download` show the notebooks as they are;
- a directory is a pseudo-folder: objects share its `dir/` prefix, and a 0-byte marker object
  `dir/` (content type `application/directory`) makes an empty folder persist;
- checkpoints are objects `.nbflask_checkpoints/<path>/<id>` made by server-side COPY;
- a chunked upload in progress is segment objects `.nbflask_uploads/<path>/<chunk number>`;
  the last chunk joins them with a static large object manifest, which a server-side COPY
  turns into one plain object at `<path>`; then the manifest and segments are deleted.
  Both top-level names are reserved: the API refuses them and listings hide them.

Swift has no rename and no compare-and-swap: a rename is COPY then DELETE (for a folder, every
object under it, all copies first so a failure half-way loses nothing), and the If-Match rule
is checked by a HEAD just before the PUT. Within one process a lock per path makes that exact;
between processes or hosts it is best-effort for writers racing between the HEAD and the PUT.
A PUT itself is atomic, so a save that fails half-way leaves the previous version.

An entry's etag is Swift's ETag (the MD5 of the content) joined to the object's timestamp, so
every save makes a new version even when the bytes are the same, as the contract asks, and
stat and listings compute the same etag.

`last_modified` is Swift's own object timestamp (X-Timestamp, the same value listings carry);
`created` is kept in the object metadata `X-Object-Meta-Created`. Listings do not carry user
metadata, so a listed file reports its last_modified as created too, and listed folders report
a fixed old date, instead of one HEAD per entry.

python-swiftclient does the HTTP. Its defaults wait 31 s on a dead server and forever on a
hung one, so every connection gets the configured `timeout` (per attempt) and `retries`.
Every failure becomes Unavailable (503) or TimedOut (504) with a message naming the store and
the request that failed. swiftclient renews an expired token once on a 401 by itself.
Connections are pooled (one request at a time each; no threads), and the token is shared
between them so one renewal serves all.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
import posixpath
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, TypeVar

import requests
import urllib3
from swiftclient.client import Connection
from swiftclient.exceptions import ClientException

from ..config import SwiftSettings
from .base import (
    SINGLE_CHECKPOINT,
    AlreadyExists,
    Checkpoint,
    Conflict,
    CopyFilter,
    Entry,
    InvalidPath,
    NotFound,
    Store,
    StoreError,
    StoreFull,
    TimedOut,
    Unavailable,
    no_upload,
    normalize_path,
    upload_failed,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

CHECKPOINTS = ".nbflask_checkpoints"
UPLOADS = ".nbflask_uploads"
RESERVED = (CHECKPOINTS, UPLOADS)
#: Swift's default limit of segments in one static large object manifest (max_manifest_segments).
MAX_SEGMENTS = 1000
#: Segments of an upload nobody finishes are removed by Swift's object expirer after a day.
UPLOAD_EXPIRY_SECONDS = 86400
DIRECTORY_TYPE = "application/directory"
CREATED_HEADER = "X-Object-Meta-Created"
#: What listed folders report as their times (Swift listings carry none for pseudo-folders).
FOLDER_TIME = datetime(1970, 1, 2, tzinfo=timezone.utc)
#: Swift's limit on an object's name in bytes (see `swift capabilities`).
MAX_OBJECT_NAME = 1024
#: Room kept in the object name for the checkpoint folder and id of the longest path.
CHECKPOINT_NAME_ROOM = len(CHECKPOINTS) + 2 + 32
CHECKPOINT_ID = re.compile(rf"^(\d{{8}}T\d{{12}}Z-[0-9a-f]{{6}}|{SINGLE_CHECKPOINT})$")
POOL_SIZE = 8
#: Locks shared out by hash of the path: compare-and-swap is exact within one process.
LOCK_STRIPES = 64
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: What a request can fail with short of an HTTP answer: refused, reset, timed out, cut off.
TRANSPORT_ERRORS = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError)


def connection_options(settings: SwiftSettings) -> dict[str, Any]:
    """The keyword arguments of `swiftclient.Connection` for these settings.

    Kept apart from the store so the Keystone branch, which needs a real Keystone to run,
    can still be checked: it is plain data.
    """
    kwargs: dict[str, Any] = {
        "authurl": settings.auth_url,
        "user": settings.user,
        "key": settings.key,
        "auth_version": settings.auth_version,
        "timeout": settings.timeout,
        "retries": settings.retries,
        "starting_backoff": 0.2,
        "max_backoff": 2,
        "retry_on_ratelimit": False,
    }
    if settings.auth_version == "3":
        os_options = {
            "project_name": settings.project_name,
            "user_domain_name": settings.user_domain_name,
            "project_domain_name": settings.project_domain_name,
        }
        if settings.region:
            os_options["region_name"] = settings.region
        kwargs["os_options"] = os_options
    return kwargs


def _timestamp(value: str) -> datetime:
    """Swift's X-Timestamp ('1795681243.99978') to an aware datetime, exact to the microsecond."""
    seconds, _, fraction = value.partition(".")
    return datetime.fromtimestamp(int(seconds), timezone.utc).replace(
        microsecond=int((fraction + "000000")[:6])
    )


def _listing_time(value: str) -> datetime:
    """A listing's last_modified ('2026-11-26T08:20:44.124310', UTC without zone)."""
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


def _checkpoint_time(checkpoint_id: str) -> datetime:
    return datetime.strptime(checkpoint_id[:21], "%Y%m%dT%H%M%S%f").replace(tzinfo=timezone.utc)


def _version_tag(md5: str, modified: datetime) -> str:
    """The etag of one saved version: the content's MD5 and the microsecond it was stored."""
    return f"{md5.strip(chr(34))}-{(modified - EPOCH) // timedelta(microseconds=1):x}"


def _object_entry(path: str, kind: Literal["file", "directory"], headers: dict[str, str]) -> Entry:
    """The entry of a file object or a folder marker, from the object's HEAD or GET headers."""
    modified = _timestamp(headers["x-timestamp"])
    created = headers.get(CREATED_HEADER.lower())
    is_file = kind == "file"
    return Entry(
        path=path,
        kind=kind,
        created=datetime.fromisoformat(created) if created else modified,
        last_modified=modified,
        size=int(headers.get("content-length", 0)) if is_file else None,
        etag=_version_tag(headers["etag"], modified) if is_file else None,
    )


def _status_text(exc: ClientException) -> str:
    return f"{exc.http_status} {exc.http_reason}".strip() if exc.http_status else str(exc.msg)


class SwiftStore(Store):
    """The store contract on one Swift container (see the module docstring for the layout)."""

    name = "swift"
    shares_state = True

    def __init__(self, settings: SwiftSettings) -> None:
        """A store on the container `settings` name (checked by `load_settings`, or as they are)."""
        if settings.auth_version == "3" and importlib.util.find_spec("keystoneclient") is None:
            raise ValueError(
                "auth_version 3 (Keystone) needs python-keystoneclient: pip install python-keystoneclient"
            )
        super().__init__()
        self.auth_url = settings.auth_url
        self.user = settings.user
        self.container = settings.container
        self.create_container = settings.create_container
        self.prefix = settings.prefix + "/" if settings.prefix else ""
        self.timeout = settings.timeout
        self._connection_options = connection_options(settings)
        self._idle: list[Connection] = []
        self._locks: dict[int, threading.Lock] = {}
        self._auth: tuple[str, str] | None = None
        self._container_ready = False

    # ------------------------------------------------------------------ talking to Swift

    def describe(self) -> str:
        """Where the notebooks are, as the start-up line says it: 'serving notebooks from ...'."""
        where = f"Swift container '{self.container}'" + (f" under '{self.prefix}'" if self.prefix else "")
        return f"{where} via {self.auth_url} (user {self.user})"

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _checkout(self) -> Connection:
        """An idle pooled connection (or a new one), carrying the newest token any got."""
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = Connection(**self._connection_options)
        if self._auth is not None and conn.token != self._auth[1]:
            conn.url, conn.token = self._auth
        return conn

    def _release(self, conn: Connection) -> None:
        """Back to the pool after a complete answer."""
        self._remember_token(conn)
        if len(self._idle) < POOL_SIZE:
            self._idle.append(conn)
        else:
            conn.close()

    def _discard(self, conn: Connection) -> None:
        """Close a connection whose socket may be mid-response; the next request opens anew."""
        self._remember_token(conn)
        conn.close()

    def _remember_token(self, conn: Connection) -> None:
        if conn.url and conn.token:
            self._auth = (conn.url, conn.token)

    def _on_connection(self, request: Callable[[Connection], T]) -> T:
        """Run a request on a pooled connection; keep it after any answer, drop it otherwise."""
        conn = self._checkout()
        try:
            result = request(conn)
        except ClientException:
            self._release(conn)  # Swift answered (an error status is a complete answer)
            raise
        except BaseException:
            self._discard(conn)
            raise
        self._release(conn)
        return result

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

    def _fail(self, what: str, exc: BaseException) -> StoreError:
        """One clear store error for a failed Swift request."""
        where = f"swift store (container '{self.container}' via {self.auth_url})"
        if isinstance(exc, ClientException):
            if exc.http_status == 401:
                return Unavailable(
                    f"{where}: {what} failed: Swift refused the login of '{self.user}' (401)"
                    " even after renewing the token"
                )
            if exc.http_status in (413, 507):  # over a quota or the object size limit; disks full
                return StoreFull(f"{where}: {what} failed: Swift has no room for it ({_status_text(exc)})")
            return Unavailable(f"{where}: {what} failed: Swift answered {_status_text(exc)}")
        timed_out = isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError))
        if timed_out:
            return TimedOut(f"{where}: {what} failed: no answer within {self.timeout:g} s")
        return Unavailable(f"{where}: {what} failed: cannot reach Swift ({type(exc).__name__}: {exc})")

    def _call(self, what: str, request: Callable[[Connection], T], missing: StoreError | None = None) -> T:
        """Run one request on a pooled connection; a 404 raises `missing` when it is given."""
        self._ensure_container()
        try:
            return self._on_connection(request)
        except ClientException as exc:
            if exc.http_status == 404 and missing is not None:
                raise missing from None
            raise self._fail(what, exc) from None
        except TRANSPORT_ERRORS as exc:
            raise self._fail(what, exc) from None

    def _ensure_container(self) -> None:
        """Create the container on first use if allowed; say clearly when it is missing."""
        if self._container_ready:
            return
        self._container_ready = True
        try:
            try:
                self._on_connection(lambda conn: conn.head_container(self.container))
            except ClientException as exc:
                if exc.http_status != 404:
                    raise
                if not self.create_container:
                    raise Unavailable(
                        f"swift store: container '{self.container}' does not exist at {self.auth_url}"
                        " and create_container is false"
                    ) from None
                log.info("creating Swift container %r", self.container)
                self._on_connection(lambda conn: conn.put_container(self.container))
        except ClientException as exc:
            self._container_ready = False
            if exc.http_status == 403:
                raise Unavailable(
                    f"swift store: container '{self.container}' does not exist and user '{self.user}'"
                    f" may not create it (403 Forbidden): create it, or grant the user write access"
                ) from None
            raise self._fail(f"checking container '{self.container}'", exc) from None
        except TRANSPORT_ERRORS as exc:
            self._container_ready = False
            raise self._fail(f"checking container '{self.container}'", exc) from None
        except StoreError:
            self._container_ready = False
            raise

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
            return self._call(f"HEAD '{name}'", lambda c: c.head_object(self.container, name), NotFound(name))
        except NotFound:
            return None

    def _listing(self, folder: str, *, delimiter: str | None = "/", limit: int | None = None) -> list[dict]:
        what = f"listing '{folder}'"
        full = limit is None
        return self._call(
            what,
            lambda c: c.get_container(
                self.container, prefix=folder, delimiter=delimiter, limit=limit, full_listing=full
            )[1],
        )

    def _file_entry(self, path: str, headers: dict[str, str]) -> Entry:
        return _object_entry(path, "file", headers)

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
            return _object_entry(path, "directory", marker)
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

    def stat(self, path: str) -> Entry:
        return self._existing(self._path(path))

    def list(self, path: str) -> list[Entry]:
        path = self._path(path)
        folder = self._folder(path)
        items = self._listing(folder)
        if not items and path:
            self._existing_folder(path)  # an empty folder has its marker; otherwise say why
        entries: dict[str, Entry] = {}
        for item in items:
            if "subdir" in item:
                name = item["subdir"][len(folder) :].rstrip("/")
                if not name or (not path and name in RESERVED):
                    continue
                entries.setdefault(
                    name,
                    Entry(
                        path=posixpath.join(path, name),
                        kind="directory",
                        created=FOLDER_TIME,
                        last_modified=FOLDER_TIME,
                    ),
                )
                continue
            name = item["name"][len(folder) :]
            if not name:
                continue  # the folder's own marker
            modified = _listing_time(item["last_modified"])
            entries[name] = Entry(
                path=posixpath.join(path, name),
                kind="file",
                created=modified,
                last_modified=modified,
                size=int(item["bytes"]),
                etag=_version_tag(item["hash"], modified),
            )
        return sorted(entries.values(), key=lambda entry: entry.name)

    def read(self, path: str) -> bytes:
        path = self._path(path)
        name = self._object(path)
        missing = NotFound(f"no such file: {path!r}")
        try:
            return self._call(f"GET '{name}'", lambda c: c.get_object(self.container, name)[1], missing)
        except NotFound:
            self._existing_file(path)  # a folder gets "is a directory", not "no such file"
            raise

    def read_chunks(self, path: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        return self.open_stream(path, chunk_size)[1]

    def open_stream(self, path: str, chunk_size: int = 1 << 20) -> tuple[Entry, Iterator[bytes]]:
        """One GET: the entry from its headers, the body streamed while it holds a connection.

        A body cut off mid-transfer is resumed by swiftclient with a Range GET that carries
        If-Match, so a save landing meanwhile can never be spliced in: that fails instead.
        """
        path = self._path(path)
        name = self._object(path)
        what = f"GET '{name}'"
        self._ensure_container()
        conn = self._checkout()
        try:
            headers, body = conn.get_object(self.container, name, resp_chunk_size=chunk_size)
        except ClientException as exc:
            self._release(conn)
            if exc.http_status == 404:
                self._existing_file(path)
                raise NotFound(f"no such file: {path!r}") from None
            raise self._fail(what, exc) from None
        except TRANSPORT_ERRORS as exc:
            self._discard(conn)
            raise self._fail(what, exc) from None

        def chunks() -> Iterator[bytes]:
            try:
                yield from body
            except (ClientException, *TRANSPORT_ERRORS) as exc:
                self._discard(conn)
                raise self._fail(what + " (mid-transfer)", exc) from None
            except BaseException:
                self._discard(conn)  # the reader went away before the end
                raise
            self._release(conn)

        return self._file_entry(path, headers), chunks()

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

        return self._call(f"PUT '{name}'", request)

    def write(self, path: str, data: bytes, if_match: str | None = None) -> Entry:
        return self.save(path, data, if_match)[0]

    def save(self, path: str, data: bytes, if_match: str | None = None) -> tuple[Entry, bool]:
        """HEAD (does it exist, since when, If-Match), PUT, HEAD (the new version's etag and
        time): three requests, two more for a new file (is it a folder, is its parent one)."""
        path = self._path(path)
        if not path:
            raise InvalidPath("the root is a directory, not a file")
        with self._locked(path):
            return self._write(path, data, if_match)

    def _write(self, path: str, data: bytes, if_match: str | None) -> tuple[Entry, bool]:
        created, new = self._replaceable(path, if_match)
        md5 = self._put(self._object(path), data, {CREATED_HEADER: created})
        return self._saved(path, lambda headers: headers.get("etag", "").strip('"') == md5), new

    def _replaceable(self, path: str, if_match: str | None) -> tuple[str, bool]:
        """Check that a file may be saved at `path` (If-Match, not a folder, parent exists);
        returns the creation time the saved object keeps, and whether the file is new."""
        current = self._head(self._object(path))
        if if_match is not None and (
            current is None or self._file_entry(path, current).etag != _etag(if_match)
        ):
            raise Conflict(f"{path!r} changed since the version you have (If-Match {if_match})")
        if current is None:
            if self._has_folder(path):
                raise InvalidPath(f"{path!r} is a directory, not a file")
            self._check_parent(path)
            return datetime.now(timezone.utc).isoformat(), True
        return current.get(CREATED_HEADER.lower()) or _timestamp(current["x-timestamp"]).isoformat(), False

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

    # ------------------------------------------------------------------ chunked uploads

    def _segment(self, path: str, number: int) -> str:
        return f"{self._upload_folder(path)}{number:010d}"

    def _put_segment(self, name: str, data: bytes) -> None:
        self._put(name, data, {"X-Delete-After": str(UPLOAD_EXPIRY_SECONDS)})

    def _clear_upload(self, path: str) -> None:
        self._delete_objects(self._names_under(self._upload_folder(path)))

    def _failed_mark(self, path: str) -> str:
        """The empty object that says the upload of `path` lost a chunk; its name sorts before
        every segment, so the one-entry listing that finds the upload also finds the mark."""
        return f"{self._upload_folder(path)}{0:010d}-failed"

    def _fail_upload(self, path: str) -> None:
        """Drop what is staged and leave the mark, as far as Swift lets us: it may be down, which
        is likely why the upload failed (without the mark, the chunks after the missing one
        still find no upload, but a lone last chunk would pass as the whole file)."""
        try:
            self._clear_upload(path)
            self._put_segment(self._failed_mark(path), b"")
        except StoreError:
            pass

    def stage_chunk(self, path: str, number: int, data: bytes) -> None:
        path = self._path(path)
        if not path:
            raise InvalidPath("the root is a directory, not a file")
        if number == 1:
            if self._find_folder(path) is not None:
                raise InvalidPath(f"{path!r} is a directory, not a file")
            self._check_parent(path)
            self._clear_upload(path)
        else:
            first = self._listing(self._upload_folder(path), delimiter=None, limit=1)
            if not first:
                raise no_upload(path, number)
            if first[0]["name"] == self._failed_mark(path):
                raise upload_failed(path)
        try:
            self._put_segment(self._segment(path, number), data)
        except StoreError:
            self._fail_upload(path)
            raise

    def commit_upload(self, path: str, data: bytes, if_match: str | None = None) -> Entry:
        path = self._path(path)
        if not path:
            raise InvalidPath("the root is a directory, not a file")
        with self._locked(path):
            folder = self._upload_folder(path)
            segments = self._listing(folder, delimiter=None)
            if not segments:
                return self._write(path, data, if_match)[0]
            if segments[0]["name"] == self._failed_mark(path):
                raise upload_failed(path)
            try:
                entry = self._join(path, folder, segments, data, if_match)
            except StoreError:
                self._fail_upload(path)
                raise
            self._clear_upload(path)
            return entry

    def _join(self, path: str, folder: str, segments: list[dict], data: bytes, if_match: str | None) -> Entry:
        """Make the segments plus the last chunk one plain object at `path`, all inside Swift."""
        if data:
            last = f"{folder}last"
            self._put_segment(last, data)
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
            segments.append({"name": last, "hash": md5, "bytes": len(data)})
        parts = [
            {"path": self._destination(item["name"]), "etag": item["hash"], "size_bytes": item["bytes"]}
            for item in sorted(segments, key=lambda item: item["name"])
            if item["bytes"]  # Swift refuses empty segments; they add nothing anyway
        ]
        if not parts:
            return self._write(path, b"", if_match)[0]
        created, _ = self._replaceable(path, if_match)
        size = sum(part["size_bytes"] for part in parts)
        level = 0
        while len(parts) > MAX_SEGMENTS:
            level += 1
            groups = [parts[i : i + MAX_SEGMENTS] for i in range(0, len(parts), MAX_SEGMENTS)]
            parts = [
                {
                    "path": self._destination(self._put_manifest(f"{folder}manifest-{level}-{i:06d}", group)),
                    "etag": None,
                    "size_bytes": None,
                }
                for i, group in enumerate(groups)
            ]
        manifest = self._put_manifest(f"{folder}manifest", parts)
        target = self._object(path)
        self._call(
            f"COPY '{manifest}' to '{target}'",
            lambda c: c.copy_object(
                self.container, manifest, self._destination(target), headers={CREATED_HEADER: created}
            ),
        )
        return self._saved(path, lambda headers: int(headers.get("content-length", -1)) == size)

    def _put_manifest(self, name: str, parts: list[dict]) -> str:
        """A static large object manifest of `parts` (nested manifests for more than Swift's
        limit of segments); COPY of it yields the concatenation as one plain object."""
        body = json.dumps(parts).encode()
        self._call(
            f"PUT manifest '{name}'",
            lambda c: c.put_object(
                self.container,
                name,
                io.BytesIO(body),
                content_length=len(body),
                query_string="multipart-manifest=put",
            ),
        )
        return name

    def mkdir(self, path: str) -> Entry:
        path = self._path(path)
        if not path or self._find(path) is not None:
            raise AlreadyExists(f"{path!r} already exists")
        self._check_parent(path)
        created = datetime.now(timezone.utc).isoformat()
        self._put(self._folder(path), b"", {CREATED_HEADER: created}, DIRECTORY_TYPE)
        return self._existing(path)

    def _delete_objects(self, names: list[str]) -> None:
        """Delete objects one by one; one already gone (a racing delete) is fine."""
        for name in names:
            try:
                self._call(
                    f"DELETE '{name}'", lambda c, n=name: c.delete_object(self.container, n), NotFound(name)
                )
            except NotFound:
                pass

    def _names_under(self, folder: str) -> list[str]:
        return [item["name"] for item in self._listing(folder, delimiter=None)]

    def _checkpoint_names(self, path: str) -> list[str]:
        """Checkpoints of `path` and, for a folder, of everything inside it."""
        return self._names_under(self._checkpoint_folder(path))

    def delete(self, path: str, if_match: str | None = None) -> None:
        path = self._path(path)
        if not path:
            raise InvalidPath("the root directory cannot be deleted")
        with self._locked(path):
            self._delete(path, if_match)

    def _delete(self, path: str, if_match: str | None) -> None:
        entry = self._existing(path)
        _check_if_match(entry, if_match)
        if entry.kind == "file":
            self._delete_objects([self._object(path)])
        else:
            # The marker last: a failure half-way leaves the folder, with what is left in it.
            folder = self._folder(path)
            self._delete_objects([name for name in self._names_under(folder) if name != folder] + [folder])
        self._delete_objects(self._checkpoint_names(path))

    def rename(self, old_path: str, new_path: str, if_match: str | None = None) -> Entry:
        old_path, new_path = self._path(old_path), self._path(new_path)
        if not old_path or not new_path:
            raise InvalidPath("the root directory cannot be moved")
        with self._locked(old_path, new_path):
            return self._rename(old_path, new_path, if_match)

    def _rename(self, old_path: str, new_path: str, if_match: str | None) -> Entry:
        entry = self._existing(old_path)
        _check_if_match(entry, if_match)
        if new_path == old_path:
            return entry
        if new_path.startswith(old_path + "/"):
            raise InvalidPath(f"cannot move {old_path!r} into itself ({new_path!r})")
        if self._find(new_path) is not None:
            raise AlreadyExists(f"{new_path!r} already exists")
        self._check_parent(new_path)
        if entry.kind == "file":
            moves = [(self._object(old_path), self._object(new_path))]
        else:
            old_folder, new_folder = self._folder(old_path), self._folder(new_path)
            moves = [(name, new_folder + name[len(old_folder) :]) for name in self._names_under(old_folder)]
        old_checkpoints, new_checkpoints = (
            self._checkpoint_folder(old_path),
            self._checkpoint_folder(new_path),
        )
        moves += [
            (name, new_checkpoints + name[len(old_checkpoints) :])
            for name in self._checkpoint_names(old_path)
        ]
        # Every copy first, then the deletes: a failure half-way leaves both, never neither.
        for source, target in moves:
            self._copy(source, target)
        self._delete_objects([source for source, _ in moves])
        return self._existing(new_path)

    def _copy(
        self,
        source: str,
        target: str,
        missing: StoreError | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._call(
            f"COPY '{source}' to '{target}'",
            lambda c: c.copy_object(self.container, source, self._destination(target), headers=headers),
            missing,
        )

    def copy(self, source: str, target: str, keep: CopyFilter | None = None) -> Entry:
        """Server-side COPY of the file, or of every object under the folder that `keep`
        accepts with every folder above it: no bytes travel through nbflask. The copies are
        new: they get a new creation time. A failed copy deletes the objects it made."""
        source, target = self._path(source), self._path(target)
        with self._locked(target):
            if self._find(target) is not None:
                raise AlreadyExists(f"{target!r} already exists")
            entry = self._existing(source)
            if target == source or target.startswith(source + "/"):
                raise InvalidPath(f"cannot copy {source!r} into itself ({target!r})")
            self._check_parent(target)
            created = {CREATED_HEADER: datetime.now(timezone.utc).isoformat()}
            if entry.kind == "file":
                missing = NotFound(f"no such file: {source!r}")
                self._copy(self._object(source), self._object(target), missing, created)
                return self._existing(target)
            old_folder, new_folder = self._folder(source), self._folder(target)
            names = self._names_under(old_folder)
            made = []
            try:
                if old_folder not in names:  # a folder without a marker still gets one
                    self._put(new_folder, b"", created, DIRECTORY_TYPE)
                    made.append(new_folder)
                for name in names:
                    if keep is None or _kept(source, name[len(old_folder) :], keep):
                        made.append(new_folder + name[len(old_folder) :])
                        self._copy(name, made[-1], None, created)
            except StoreError:
                self._delete_made(made)
                raise
            return self._existing(target)

    def _delete_made(self, names: list[str]) -> None:
        """Take back the objects a failed copy made, as far as Swift lets us."""
        try:
            self._delete_objects(names)
        except StoreError:
            pass

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint_object(self, path: str, checkpoint_id: str) -> str:
        if not CHECKPOINT_ID.match(checkpoint_id):
            raise NotFound(f"no checkpoint {checkpoint_id!r} for {path!r}")
        return self._checkpoint_folder(path) + checkpoint_id

    def _checkpointable(self, path: str) -> str:
        """A checked path naming an existing file: only files have checkpoints."""
        path = self._path(path)
        if self._head(self._object(path)) is None:
            if self._find_folder(path) is not None:
                raise InvalidPath(f"{path!r} is a directory; only files have checkpoints")
            raise NotFound(f"no such file: {path!r}")
        return path

    def create_checkpoint(self, path: str, *, single: bool = False) -> Checkpoint:
        path = self._checkpointable(path)
        checkpoint_id = SINGLE_CHECKPOINT if single else self._checkpoint_id()
        name = self._checkpoint_folder(path) + checkpoint_id
        self._copy(self._object(path), name, NotFound(f"no such file: {path!r}"))
        if not single:
            return Checkpoint(id=checkpoint_id, last_modified=_checkpoint_time(checkpoint_id))
        headers = self._head(name)
        if headers is None:
            raise Unavailable(f"swift store: checkpoint of {path!r} made, but Swift does not show it yet")
        return Checkpoint(id=checkpoint_id, last_modified=_timestamp(headers["x-timestamp"]))

    def ensure_checkpoint(self, path: str, *, single: bool = False, new: bool = False) -> None:
        """A new file gets its checkpoint by one COPY; an existing one costs one short listing
        to see it has one (nothing looks the file up again: it was just saved)."""
        path = self._path(path)
        if not new and self._listing(self._checkpoint_folder(path), limit=1):
            return
        checkpoint_id = SINGLE_CHECKPOINT if single else self._checkpoint_id()
        self._copy(self._object(path), self._checkpoint_folder(path) + checkpoint_id,
                   NotFound(f"no such file: {path!r}"))

    @staticmethod
    def _checkpoint_id() -> str:
        """A time-stamped id that sorts after the earlier ones."""
        return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ-") + secrets.token_hex(3)

    def list_checkpoints(self, path: str) -> list[Checkpoint]:
        """The ids name their time, but for the single checkpoint, whose time is its object's."""
        path = self._checkpointable(path)
        folder = self._checkpoint_folder(path)
        found = {item["name"][len(folder) :]: item for item in self._listing(folder) if "name" in item}
        return [
            Checkpoint(
                id=checkpoint_id,
                last_modified=_listing_time(found[checkpoint_id]["last_modified"])
                if checkpoint_id == SINGLE_CHECKPOINT
                else _checkpoint_time(checkpoint_id),
            )
            for checkpoint_id in sorted(found)
            if CHECKPOINT_ID.match(checkpoint_id)
        ]

    def restore_checkpoint(self, path: str, checkpoint_id: str) -> Entry:
        path = self._checkpointable(path)
        with self._locked(path):
            self._copy(
                self._checkpoint_object(path, checkpoint_id),
                self._object(path),
                NotFound(f"no checkpoint {checkpoint_id!r} for {path!r}"),
            )
            return self._existing(path)

    def delete_checkpoint(self, path: str, checkpoint_id: str) -> None:
        path = self._checkpointable(path)
        name = self._checkpoint_object(path, checkpoint_id)
        self._call(
            f"DELETE '{name}'",
            lambda c: c.delete_object(self.container, name),
            NotFound(f"no checkpoint {checkpoint_id!r} for {path!r}"),
        )


def _kept(source: str, inside: str, keep: CopyFilter) -> bool:
    """Whether the object `inside` the folder `source` (a name relative to it; a folder's
    marker ends with '/') is copied: `keep` accepts it and every folder on the way to it."""
    parts = inside.split("/")
    for depth, name in enumerate(parts):
        if not name:
            continue
        path = posixpath.join(source, *parts[: depth + 1])
        kind: Literal["file", "directory"] = "file" if depth == len(parts) - 1 else "directory"
        if not keep(Entry(path=path, kind=kind, created=FOLDER_TIME, last_modified=FOLDER_TIME)):
            return False
    return True


def _etag(value: str) -> str:
    """An ETag as Swift gives it: the MD5 hex, without quotes or a weak marker."""
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def _check_if_match(entry: Entry, if_match: str | None) -> None:
    if if_match is not None and (entry.etag is None or entry.etag != _etag(if_match)):
        raise Conflict(f"{entry.path!r} changed since the version you have (If-Match {if_match})")
