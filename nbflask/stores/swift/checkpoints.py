"""Checkpoints on Swift: objects `.nbflask_checkpoints/<path>/<id>` made by server-side COPY,
so no bytes travel through nbflask to make or restore one."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

from ..base import SINGLE_CHECKPOINT, Checkpoint, Entry, InvalidPath, NotFound, Unavailable
from .layout import CHECKPOINT_ID, checkpoint_time, listing_time, timestamp
from .objects import SwiftObjects


class SwiftCheckpoints(SwiftObjects):
    """The checkpoint methods of the Swift store."""

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
            return Checkpoint(id=checkpoint_id, last_modified=checkpoint_time(checkpoint_id))
        headers = self._head(name)
        if headers is None:
            raise Unavailable(f"swift store: checkpoint of {path!r} made, but Swift does not show it yet")
        return Checkpoint(id=checkpoint_id, last_modified=timestamp(headers["x-timestamp"]))

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
                last_modified=listing_time(found[checkpoint_id]["last_modified"])
                if checkpoint_id == SINGLE_CHECKPOINT
                else checkpoint_time(checkpoint_id),
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
        self.client.call(
            f"DELETE '{name}'",
            lambda c: c.delete_object(self.container, name),
            NotFound(f"no checkpoint {checkpoint_id!r} for {path!r}"),
        )
