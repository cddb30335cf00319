"""The Swift store: files and folders (reading, saving, folders, moves and copies) on top of
its objects, with its checkpoints and chunked uploads.

Swift has no rename: a rename is COPY then DELETE (for a folder, every object under it, all
copies first so a failure half-way loses nothing). `last_modified` is Swift's own object
timestamp (X-Timestamp, the same value listings carry); `created` is kept in the object
metadata `X-Object-Meta-Created`. Listings do not carry user metadata, so a listed file
reports its last_modified as created too, and listed folders report a fixed old date,
instead of one HEAD per entry.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Literal

from ..base import AlreadyExists, CopyFilter, Entry, InvalidPath, NotFound, StoreError
from .checkpoints import SwiftCheckpoints
from .layout import (
    CREATED_HEADER,
    DIRECTORY_TYPE,
    FOLDER_TIME,
    RESERVED,
    check_if_match,
    listing_time,
    version_tag,
)
from .uploads import ChunkedUploads


class SwiftStore(ChunkedUploads, SwiftCheckpoints):
    """The store contract on one Swift container (see the package docstring for the layout)."""

    name = "swift"
    shares_state = True

    def describe(self) -> str:
        """Where the notebooks are, as the start-up line says it: 'serving notebooks from ...'."""
        where = f"Swift container '{self.container}'" + (f" under '{self.prefix}'" if self.prefix else "")
        settings = self.client.settings
        return f"{where} via {settings.auth_url} (user {settings.user})"

    def close(self) -> None:
        self.client.close()

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
            modified = listing_time(item["last_modified"])
            entries[name] = Entry(
                path=posixpath.join(path, name),
                kind="file",
                created=modified,
                last_modified=modified,
                size=int(item["bytes"]),
                etag=version_tag(item["hash"], modified),
            )
        return sorted(entries.values(), key=lambda entry: entry.name)

    def read(self, path: str) -> bytes:
        path = self._path(path)
        name = self._object(path)
        missing = NotFound(f"no such file: {path!r}")
        try:
            return self.client.call(f"GET '{name}'", lambda c: c.get_object(self.container, name)[1], missing)
        except NotFound:
            self._existing_file(path)  # a folder gets "is a directory", not "no such file"
            raise

    def read_chunks(self, path: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        return self.open_stream(path, chunk_size)[1]

    def open_stream(self, path: str, chunk_size: int = 1 << 20) -> tuple[Entry, Iterator[bytes]]:
        """One GET: the entry from its headers, the body streamed while it holds a connection."""
        path = self._path(path)
        name = self._object(path)
        try:
            missing = NotFound(f"no such file: {path!r}")
            headers, chunks = self.client.stream(f"GET '{name}'", name, chunk_size, missing)
        except NotFound:
            self._existing_file(path)  # a folder gets "is a directory", not "no such file"
            raise
        return self._file_entry(path, headers), chunks

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

    def mkdir(self, path: str) -> Entry:
        path = self._path(path)
        if not path or self._find(path) is not None:
            raise AlreadyExists(f"{path!r} already exists")
        self._check_parent(path)
        created = datetime.now(timezone.utc).isoformat()
        self._put(self._folder(path), b"", {CREATED_HEADER: created}, DIRECTORY_TYPE)
        return self._existing(path)

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
        check_if_match(entry, if_match)
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
        check_if_match(entry, if_match)
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
