"""The memory store: notebooks held in this process, gone when it stops.

A product feature for demos, classes and throw-away servers, and the worked example of
docs/stores.md: every method of the contract in a few lines each. One lock guards the whole
tree, and nothing inside it blocks or yields, so it is safe under threads and greenlets.
Under several gunicorn workers each worker has its own tree: use it with one worker.
"""

from __future__ import annotations

import posixpath
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..clock import utcnow
from .base import (
    SINGLE_CHECKPOINT,
    AlreadyExists,
    Checkpoint,
    Conflict,
    Entry,
    InvalidPath,
    NotFound,
    Store,
    StoreError,
    StoreFull,
    no_upload,
    upload_failed,
)

#: How long a failed upload's later chunks are refused, as the file store keeps its marks
#: (swept an hour after): then the mark is forgotten, so the marks of failed uploads that no
#: one starts again do not pile up in memory.
FAILED_UPLOAD_SECONDS = 3600


@dataclass
class _Node:
    """One file (`data` is bytes) or directory (`data` is None)."""

    data: bytes | None
    created: datetime = field(default_factory=utcnow)
    modified: datetime = field(default_factory=utcnow)
    etag: str = field(default_factory=lambda: secrets.token_hex(8))
    checkpoints: dict[str, tuple[datetime, bytes]] = field(default_factory=dict)


class MemoryStore(Store):
    """Files and directories in a dict keyed by API path; `max_bytes` caps the total size."""

    name = "memory"

    def __init__(self, max_bytes: int | None = None, **options: Any) -> None:
        super().__init__(**options)
        if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes <= 0):
            raise ValueError(f"max_bytes: expected a positive integer, found {max_bytes!r}")
        self.max_bytes = max_bytes
        self._nodes: dict[str, _Node] = {"": _Node(data=None)}
        #: Uploads in progress: API path -> the chunks so far (they count toward max_bytes).
        self._uploads: dict[str, bytearray] = {}
        #: Uploads that lost a chunk (or their commit), refused until a chunk 1 or for an hour:
        #: API path -> `time.monotonic()` when it failed, oldest first.
        self._failed_uploads: dict[str, float] = {}
        self._lock = threading.RLock()

    def _entry(self, path: str, node: _Node) -> Entry:
        is_dir = node.data is None
        return Entry(
            path=path,
            kind="directory" if is_dir else "file",
            created=node.created,
            last_modified=node.modified,
            size=None if is_dir else len(node.data),
            etag=node.etag,
        )

    def _node(self, path: str) -> _Node:
        node = self._nodes.get(path)
        if node is None:
            raise NotFound(f"no such file or directory: '{path}'")
        return node

    def _file(self, path: str) -> _Node:
        node = self._node(path)
        if node.data is None:
            raise InvalidPath(f"'{path}' is a directory, not a file")
        return node

    def _parent(self, path: str) -> None:
        parent = posixpath.dirname(path)
        if self._nodes.get(parent, _Node(data=b"")).data is not None:
            raise NotFound(f"no such directory: '{parent}'")

    def _check(self, path: str, if_match: str | None) -> None:
        if if_match is not None:
            node = self._nodes.get(path)
            if node is None or node.etag != if_match:
                raise Conflict(f"'{path}' changed since version {if_match}")

    def _used(self) -> int:
        return sum(
            len(node.data or b"") + sum(len(data) for _, data in node.checkpoints.values())
            for node in self._nodes.values()
        ) + sum(len(staged) for staged in self._uploads.values())

    def _reserve(self, extra: int) -> None:
        if self.max_bytes is not None and self._used() + extra > self.max_bytes:
            raise StoreFull(f"memory store is full: it holds at most {self.max_bytes} bytes")

    def _fail_upload(self, path: str) -> None:
        """Mark the upload of `path` failed, forgetting the marks older than an hour."""
        now = time.monotonic()
        self._failed_uploads.pop(path, None)
        while self._failed_uploads:
            oldest, failed_at = next(iter(self._failed_uploads.items()))
            if now - failed_at <= FAILED_UPLOAD_SECONDS:
                break
            del self._failed_uploads[oldest]
        self._failed_uploads[path] = now

    def _upload_failed(self, path: str) -> bool:
        """Whether the upload of `path` failed within the hour (an older mark is dropped)."""
        failed_at = self._failed_uploads.get(path)
        if failed_at is not None and time.monotonic() - failed_at > FAILED_UPLOAD_SECONDS:
            del self._failed_uploads[path]
            return False
        return failed_at is not None

    def stat(self, path: str) -> Entry:
        with self._lock:
            return self._entry(path, self._node(path))

    def list(self, path: str) -> list[Entry]:
        with self._lock:
            if self._node(path).data is not None:
                raise InvalidPath(f"'{path}' is not a directory")
            return [
                self._entry(child, node)
                for child, node in self._nodes.items()
                if child and posixpath.dirname(child) == path
            ]

    def read(self, path: str) -> bytes:
        with self._lock:
            return self._file(path).data  # type: ignore[return-value]

    def write(self, path: str, data: bytes, if_match: str | None = None) -> Entry:
        data = bytes(data)
        with self._lock:
            self._parent(path)
            self._check(path, if_match)
            old = self._nodes.get(path)
            if old is not None and old.data is None:
                raise InvalidPath(f"'{path}' is a directory")
            self._reserve(len(data) - len(old.data if old else b""))
            node = _Node(data=data)
            if old is not None:
                node.created, node.checkpoints = old.created, old.checkpoints
            self._nodes[path] = node
            return self._entry(path, node)

    def save(self, path: str, data: bytes, if_match: str | None = None) -> tuple[Entry, bool]:
        """`write`, and whether it made the file, looked at under the same hold of the lock
        (a look before it let two threads both be told that they made it)."""
        with self._lock:
            new = path not in self._nodes
            return self.write(path, data, if_match), new

    def stage_chunk(self, path: str, number: int, data: bytes) -> None:
        with self._lock:
            self._parent(path)
            node = self._nodes.get(path)
            if node is not None and node.data is None:
                raise InvalidPath(f"'{path}' is a directory")
            if number == 1:
                self._uploads.pop(path, None)
                self._failed_uploads.pop(path, None)
            elif self._upload_failed(path):
                raise upload_failed(path)
            elif path not in self._uploads:
                raise no_upload(path, number)
            try:
                self._reserve(len(data))
            except StoreFull:
                self._uploads.pop(path, None)
                self._fail_upload(path)
                raise
            self._uploads.setdefault(path, bytearray()).extend(data)

    def commit_upload(self, path: str, data: bytes, if_match: str | None = None) -> Entry:
        with self._lock:
            if self._upload_failed(path):
                raise upload_failed(path)
            staged = self._uploads.pop(path, None)
            if staged is None:
                return self.write(path, data, if_match)
            staged += data
            try:
                return self.write(path, bytes(staged), if_match)
            except StoreError:
                self._fail_upload(path)
                raise

    def mkdir(self, path: str) -> Entry:
        with self._lock:
            if path in self._nodes:
                raise AlreadyExists(f"'{path}' already exists")
            self._parent(path)
            node = self._nodes[path] = _Node(data=None)
            return self._entry(path, node)

    def delete(self, path: str, if_match: str | None = None) -> None:
        with self._lock:
            if not path:
                raise InvalidPath("the root folder cannot be deleted")
            self._node(path)
            self._check(path, if_match)
            prefix = path + "/"
            for inside in [p for p in self._nodes if p == path or p.startswith(prefix)]:
                del self._nodes[inside]

    def rename(self, old_path: str, new_path: str, if_match: str | None = None) -> Entry:
        with self._lock:
            if not old_path or not new_path:
                raise InvalidPath("the root folder cannot be renamed")
            self._node(old_path)
            self._check(old_path, if_match)
            if new_path in self._nodes:
                raise AlreadyExists(f"'{new_path}' already exists")
            self._parent(new_path)
            if new_path.startswith(old_path + "/"):
                raise InvalidPath(f"cannot move '{old_path}' into itself")
            prefix = old_path + "/"
            moved = [p for p in self._nodes if p == old_path or p.startswith(prefix)]
            for path in moved:
                self._nodes[new_path + path[len(old_path) :]] = self._nodes.pop(path)
            return self._entry(new_path, self._nodes[new_path])

    def create_checkpoint(self, path: str, *, single: bool = False) -> Checkpoint:
        with self._lock:
            node = self._file(path)
            replaced = node.checkpoints.get(SINGLE_CHECKPOINT) if single else None
            self._reserve(len(node.data) - (len(replaced[1]) if replaced else 0))  # type: ignore[arg-type]
            stamp = time.time_ns()
            while f"{stamp:020d}" in node.checkpoints:
                stamp += 1
            checkpoint_id, moment = SINGLE_CHECKPOINT if single else f"{stamp:020d}", utcnow()
            node.checkpoints[checkpoint_id] = (moment, node.data)  # type: ignore[assignment]
            return Checkpoint(id=checkpoint_id, last_modified=moment)

    def list_checkpoints(self, path: str) -> list[Checkpoint]:
        with self._lock:
            node = self._file(path)
            return [
                Checkpoint(id=cid, last_modified=node.checkpoints[cid][0]) for cid in sorted(node.checkpoints)
            ]

    def _checkpoint(self, node: _Node, path: str, checkpoint_id: str) -> bytes:
        try:
            return node.checkpoints[checkpoint_id][1]
        except KeyError:
            raise NotFound(f"no checkpoint '{checkpoint_id}' for '{path}'") from None

    def restore_checkpoint(self, path: str, checkpoint_id: str) -> Entry:
        with self._lock:
            data = self._checkpoint(self._file(path), path, checkpoint_id)
            return self.write(path, data)

    def delete_checkpoint(self, path: str, checkpoint_id: str) -> None:
        with self._lock:
            node = self._file(path)
            self._checkpoint(node, path, checkpoint_id)
            del node.checkpoints[checkpoint_id]

    def describe(self) -> str:
        return "memory (notebooks are lost when the server stops)"
