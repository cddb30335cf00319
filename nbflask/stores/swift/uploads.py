"""Chunked uploads on Swift: each chunk a segment object, the last one joining them in Swift.

A chunked upload in progress is segment objects `.nbflask_uploads/<path>/<chunk number>`
(with X-Delete-After, so Swift's object expirer removes an upload nobody finishes); the last
chunk joins them with a static large object manifest, which a server-side COPY turns into
one plain object at `<path>`; then the manifest and segments are deleted.
"""

from __future__ import annotations

import hashlib
import io
import json

from ..base import Entry, InvalidPath, StoreError, no_upload, upload_failed
from .layout import CREATED_HEADER
from .objects import SwiftObjects

#: Swift's default limit of segments in one static large object manifest (max_manifest_segments).
MAX_SEGMENTS = 1000
#: Segments of an upload nobody finishes are removed by Swift's object expirer after a day.
UPLOAD_EXPIRY_SECONDS = 86400


class ChunkedUploads(SwiftObjects):
    """`stage_chunk` and `commit_upload` of the Swift store."""

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
        self.client.call(
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
        self.client.call(
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
