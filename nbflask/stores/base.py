"""The store contract: where notebooks and files live, as bytes plus a little metadata.

A store knows nothing of HTTP, JSON models or nbformat: the contents service above it turns
entries and bytes into Jupyter's REST models. That keeps a new store small: implement the
abstract methods below, raise the errors below, and the whole contents API works on it.

Paths are API paths: '/'-separated, relative to the store's root, '' for the root itself,
already checked by `normalize_path` before they reach a store.
"""

from __future__ import annotations

import abc
import errno
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal


class StoreError(Exception):
    """Base of every error a store raises: the kind of failure, never an HTTP status (the web
    layer answers each kind with its own, `nbflask.errors.STORE_STATUS`).

    `reason` is the short machine-readable word Jupyter clients look at (e.g. "bad format");
    stores rarely need it, the contents service sets it where Jupyter does.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class NotFound(StoreError):
    """No entry at the path, or no such checkpoint."""


class InvalidPath(StoreError):
    """A path no entry may have, or one the operation cannot take (a directory as a file)."""


class BadContent(StoreError):
    """Content that cannot be stored or served as asked: not a notebook, bad base64, ..."""


class AlreadyExists(StoreError):
    """The path is taken where a free one is needed."""


class NotEmpty(StoreError):
    """A directory that still holds entries where an empty one is needed."""


class Conflict(StoreError):
    """The entry changed since the version the client named (If-Match)."""


class PermissionDenied(StoreError):
    """The backend refuses this change or read of the entry."""


class Unavailable(StoreError):
    """The backing service is down or failing, naming the store and what failed."""


class TimedOut(StoreError):
    """The backing service did not answer in time."""


class StoreFull(StoreError):
    """The store has no room for the new content (quota, disk full)."""


def no_upload(path: str, number: int) -> BadContent:
    """What `stage_chunk` raises for a chunk after the first when no upload is staged."""
    return BadContent(f"no upload of '{path}' in progress: chunk {number} came before chunk 1")


def upload_failed(path: str) -> BadContent:
    """What `stage_chunk` (after chunk 1) and `commit_upload` raise once a chunk or the commit
    of the upload failed: what is staged lacks that chunk, so only a new upload can follow."""
    return BadContent(
        f"the upload of '{path}' failed at an earlier chunk and was dropped: start it again from chunk 1"
    )


def os_error(exc: OSError, path: str) -> StoreError:
    """The store error a client can act on for an OS error on `path`: for the file store and
    anything else that keeps its data in files (the front-ends' per-user state)."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG):
        return NotFound(f"no such file or directory: '{path}'")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDenied(f"permission denied: '{path}'")
    if exc.errno == errno.EEXIST:
        return AlreadyExists(f"'{path}' already exists")
    if exc.errno == errno.ENOTEMPTY:
        return NotEmpty(f"directory '{path}' is not empty")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(f"no room to save '{path}': {exc.strerror}")
    if exc.errno == errno.EISDIR:
        return InvalidPath(f"'{path}' is a directory")
    return StoreError(f"cannot access '{path}': {exc.strerror}")


@dataclass(frozen=True)
class Entry:
    """One file or directory as the store sees it."""

    path: str
    kind: Literal["file", "directory"]
    created: datetime
    last_modified: datetime
    size: int | None = None
    etag: str | None = None
    writable: bool = True
    #: Where the entry really lives when a link leads elsewhere (the file store's symlinks),
    #: so a listing can leave out a visible link into a hidden folder without a look per entry.
    real_path: str | None = None

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


#: Which entries inside a copied folder `Store.copy` copies (with all they hold).
CopyFilter = Callable[[Entry], bool]

#: The id of a file's one checkpoint when checkpoints are single, as Jupyter names it.
SINGLE_CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    """A saved copy of a file; `id` is opaque to clients but must sort oldest first
    (`SINGLE_CHECKPOINT` sorts after the time-stamped ids, which start with a digit)."""

    id: str
    last_modified: datetime


def normalize_path(path: str) -> str:
    """Return the canonical API path, or raise InvalidPath for anything hostile.

    Refuses `..` segments, absolute paths, NUL and control characters and backslashes, so a
    store never sees a path that could leave its root. Empty and `.` segments are dropped.
    """
    if any(ord(c) < 32 for c in path) or "\\" in path:
        raise InvalidPath(f"invalid path {path!r}: control characters and backslashes are not allowed")
    parts = []
    for part in path.strip("/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise InvalidPath(f"invalid path {path!r}: '..' is not allowed")
        parts.append(part)
    if path.startswith("//") or (parts and ":" in parts[0] and len(parts[0]) == 2):
        raise InvalidPath(f"invalid path {path!r}: absolute paths are not allowed")
    return "/".join(parts)


class Store(abc.ABC):
    """The contract every notebook store implements.

    A store named by `package.module:Class` takes its YAML options (everything in `store:`
    but `class`) as keyword arguments and raises `ValueError` with a readable message for bad
    ones. The built-in swift store's options are typed settings instead (`SwiftSettings`),
    checked with the rest of the configuration when it loads.
    """

    #: Short name used in error messages, e.g. "file", "swift".
    name = "store"
    #: True when many web hosts serve one store (Swift): per-user front-end state then
    #: lives in the store (nbflask/frontend/userstate.py) so every host sees it.
    shares_state = False

    def __init__(self, **options: Any) -> None:
        if options:
            raise ValueError(f"unknown option(s) for store '{self.name}': {', '.join(sorted(options))}")

    @abc.abstractmethod
    def stat(self, path: str) -> Entry:
        """The entry at `path`; NotFound if there is none."""

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except NotFound:
            return False
        return True

    @abc.abstractmethod
    def list(self, path: str) -> list[Entry]:
        """The entries directly inside the directory `path` (hidden ones included)."""

    @abc.abstractmethod
    def read(self, path: str) -> bytes:
        """The whole content of the file at `path`."""

    def read_chunks(self, path: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The content in chunks, for streaming downloads; stores may avoid the full copy."""
        data = self.read(path)
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    def open_stream(self, path: str, chunk_size: int = 1 << 20) -> tuple[Entry, Iterator[bytes]]:
        """The entry and its content in chunks, taken from the same version of the file.

        Downloads use this so the Content-Length and ETag they send describe exactly the
        bytes that follow even if a save lands meanwhile. The default streams `read_chunks`
        when a store overrides it, else reads the whole file; stores that can stream one
        version (an open file, an HTTP body with its ETag) override this instead.
        """
        entry = self.stat(path)
        if type(self).read_chunks is not Store.read_chunks:
            return entry, self.read_chunks(path, chunk_size)
        data = self.read(path)
        if entry.size != len(data):
            entry = self.stat(path)
        view = memoryview(data)
        return entry, (bytes(view[i : i + chunk_size]) for i in range(0, len(data), chunk_size))

    @abc.abstractmethod
    def write(self, path: str, data: bytes, if_match: str | None = None) -> Entry:
        """Atomically create or replace the file at `path`.

        Readers see the old or the new content, never a mix. With `if_match`, raise Conflict
        unless the current etag equals it (a file that does not exist matches nothing).
        """

    def save(self, path: str, data: bytes, if_match: str | None = None) -> tuple[Entry, bool]:
        """`write`, and whether it made a new file (a save answers 201 then, and a new
        notebook gets its first checkpoint). Of clients creating one file at once exactly one
        must be told so: this default looks before it writes, which only a store that cannot
        race (one lock held across both) may keep; the file, memory and Swift stores decide
        it where they write."""
        existed = self.exists(path)
        return self.write(path, data, if_match=if_match), not existed

    @abc.abstractmethod
    def stage_chunk(self, path: str, number: int, data: bytes) -> None:
        """Keep one chunk of an upload of `path` aside; the file itself does not change yet.

        Chunks come in order, numbered 1, 2, 3, ... (Jupyter's `chunk`); chunk 1 starts the
        upload afresh, dropping whatever an earlier, abandoned upload of `path` left. Raise
        BadContent for a later chunk when no upload of `path` is staged, NotFound when the
        parent folder is missing and InvalidPath when `path` is a directory. Each chunk costs
        its own size: nothing already staged is read again.

        A chunk that cannot be kept (no room, the backend down) fails the upload: its staged
        chunks are dropped and, until a chunk 1 starts a new one, every later chunk and the
        commit raise `upload_failed`, so the file never becomes an upload with a chunk missing.
        """

    @abc.abstractmethod
    def commit_upload(self, path: str, data: bytes, if_match: str | None = None) -> Entry:
        """Add the last chunk and make the staged upload the file's content, atomically.

        Like `write`: readers see the old or the whole new file, and `if_match` is checked
        at the swap. With nothing staged, the file becomes `data`. Whatever the outcome the
        staged chunks are gone afterwards; a failed commit leaves the old file as it was and
        fails the upload (a retry of the last chunk alone must not become the whole file), and
        the commit of a failed upload raises `upload_failed`.
        """

    @abc.abstractmethod
    def mkdir(self, path: str) -> Entry:
        """Create the directory `path` (parents must exist); AlreadyExists if taken."""

    @abc.abstractmethod
    def delete(self, path: str, if_match: str | None = None) -> None:
        """Delete a file or a directory with everything in it, and their checkpoints."""

    @abc.abstractmethod
    def rename(self, old_path: str, new_path: str, if_match: str | None = None) -> Entry:
        """Move a file or directory; AlreadyExists if `new_path` is taken."""

    def copy(self, source: str, target: str, keep: CopyFilter | None = None) -> Entry:
        """Copy a file, or a directory and everything in it, to `target`, which must be free.

        Inside a directory only the entries `keep` accepts are copied (each with all it holds):
        the contents service leaves out what it hides, so a copy never makes hidden content
        visible. A copy that fails takes back what it made, as far as the store lets it.
        The default reads and writes file by file through the contract, so it works on any
        store; a store that can copy on its side (Swift's server-side COPY) overrides it.
        Checkpoints are not copied: the copy is a new file.
        """
        if self.exists(target):
            raise AlreadyExists(f"'{target}' already exists")
        entry = self.stat(source)
        if entry.kind == "file":
            return self.write(target, self.read(source))
        if target == source or target.startswith(source + "/"):
            raise InvalidPath(f"cannot copy '{source}' into itself")
        made = self.mkdir(target)
        try:
            self._copy_inside(source, target, keep)
        except BaseException:
            try:
                self.delete(target)
            except StoreError:
                pass
            raise
        return made

    def _copy_inside(self, source: str, target: str, keep: CopyFilter | None) -> None:
        """Copy what the folder `source` holds into the new folder `target`."""
        for child in self.list(source):
            if keep is not None and not keep(child):
                continue
            child_target = posixpath.join(target, child.name)
            if child.kind == "file":
                self.write(child_target, self.read(child.path))
            else:
                self.mkdir(child_target)
                self._copy_inside(child.path, child_target, keep)

    def real_path(self, path: str) -> str:
        """The API path an entry really lives at once links are followed.

        Stores without links return `path`; the file store resolves symlinks, so the contents
        service can refuse to serve a hidden folder reached through a visible link.
        """
        return path

    @abc.abstractmethod
    def create_checkpoint(self, path: str, *, single: bool = False) -> Checkpoint:
        """Keep a copy of the file's current content; returns the checkpoint.

        `single`: (re)make the checkpoint whose id is `SINGLE_CHECKPOINT`, replacing the copy
        it held. Otherwise make a new one with a time-stamped id that sorts after the others.
        """

    @abc.abstractmethod
    def list_checkpoints(self, path: str) -> list[Checkpoint]:
        """Checkpoints of `path`, oldest first."""

    def ensure_checkpoint(self, path: str, *, single: bool = False, new: bool = False) -> None:
        """Give a notebook just saved a checkpoint to revert to if it has none, as Jupyter
        does. `new`: the file was just made, so it has none and there is nothing to look up."""
        if new or not self.list_checkpoints(path):
            self.create_checkpoint(path, single=single)

    @abc.abstractmethod
    def restore_checkpoint(self, path: str, checkpoint_id: str) -> Entry:
        """Make the checkpoint's content the file's content again."""

    @abc.abstractmethod
    def delete_checkpoint(self, path: str, checkpoint_id: str) -> None:
        """Forget one checkpoint; NotFound if there is no such checkpoint."""

    def prune_checkpoints(self, path: str, keep: int) -> None:
        """Delete the oldest checkpoints of `path` until at most `keep` remain."""
        checkpoints = self.list_checkpoints(path)
        for checkpoint in checkpoints[: max(len(checkpoints) - keep, 0)]:
            try:
                self.delete_checkpoint(path, checkpoint.id)
            except NotFound:
                pass

    def describe(self) -> str:
        """Where the notebooks live, for the start-up message."""
        return f"{self.name} store"

    def close(self) -> None:
        """Release connections or files; called when the app shuts down."""
        return None
