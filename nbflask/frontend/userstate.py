"""Per-user state the front-ends save: settings overrides, workspaces, config sections.

Every web host of a deployment must see the same state, or a theme chosen on one host is
gone on the next request. By default it lives in the per-user data folder (the one that
holds notebook trust); with a store whose `shares_state` is true (Swift, where many hosts
serve one container) it lives in that store under a hidden folder the contents API refuses
to show or change. Entries are (kind, name) -> bytes; names are percent-encoded into one
file name, so a name such as `@jupyterlab/apputils-extension:themes` is one flat entry, and
`..` (a workspace JupyterLab lets one name so) is one too.
"""

from __future__ import annotations

import abc
from pathlib import Path
from urllib.parse import quote, unquote

from .. import runtime
from ..api_error import APIError
from ..stores.base import AlreadyExists, NotFound, Store, os_error

STORE_FOLDER = ".nbflask-state"
MAX_ENTRY = 200  # bytes: a file name holds 255, and an atomic save names its temporary file longer


class NameTooLong(APIError):
    """A name no entry can have: a 400 when saving."""


def _entry_name(name: str) -> str:
    """`name` as one flat file name: percent-encoded, and `.` and `..` too (as they are, they
    name folders); APIError 400 for a name too long to be a file name even encoded (nothing
    is saved under it: reading it finds nothing, deleting it deletes nothing)."""
    entry = quote(name, safe="") or "%00"
    if not entry.strip("."):
        entry = "%2E" * len(entry)
    if len(entry) > MAX_ENTRY:
        raise NameTooLong(400, f"name too long to save: {name[:40]!r}... is {len(entry)} bytes once"
                               f" encoded, at most {MAX_ENTRY}", "Name Too Long")
    return entry


class UserState(abc.ABC):
    """A small key-value store of the front-ends' per-user files."""

    @abc.abstractmethod
    def get(self, kind: str, name: str) -> bytes | None:
        """The saved bytes, or None if nothing is saved under that name."""

    @abc.abstractmethod
    def put(self, kind: str, name: str, data: bytes) -> None:
        """Save atomically, replacing what was there."""

    @abc.abstractmethod
    def delete(self, kind: str, name: str) -> bool:
        """Forget an entry; False if there was none."""

    @abc.abstractmethod
    def names(self, kind: str) -> list[str]:
        """Every saved name of one kind, sorted."""


class FolderState(UserState):
    """State as files in a private folder (0700 folders, 0600 files, atomic writes).

    A folder that is full or not writable fails as a store does (`os_error`), so a settings
    or workspace save answers as a notebook save would (507, 403), never with a traceback."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, kind: str) -> Path:
        folder = self.root / kind
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise os_error(exc, kind) from None
        return folder

    def get(self, kind: str, name: str) -> bytes | None:
        try:
            return (self.root / kind / _entry_name(name)).read_bytes()
        except (FileNotFoundError, NameTooLong):
            return None

    def put(self, kind: str, name: str, data: bytes) -> None:
        try:
            runtime.write_private(self._folder(kind) / _entry_name(name), data)
        except OSError as exc:
            raise os_error(exc, f"{kind}/{name}") from None

    def delete(self, kind: str, name: str) -> bool:
        try:
            (self.root / kind / _entry_name(name)).unlink()
        except (FileNotFoundError, NameTooLong):
            return False
        except OSError as exc:
            raise os_error(exc, f"{kind}/{name}") from None
        return True

    def names(self, kind: str) -> list[str]:
        folder = self.root / kind
        if not folder.is_dir():
            return []
        return sorted(unquote(p.name) for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


class StoreState(UserState):
    """State inside the notebook store itself, under `.nbflask-state/<kind>/`."""

    def __init__(self, store: Store, folder: str = STORE_FOLDER) -> None:
        self.store = store
        self.folder = folder

    def _path(self, kind: str, name: str | None = None) -> str:
        base = f"{self.folder}/{kind}"
        return base if name is None else f"{base}/{_entry_name(name)}"

    def get(self, kind: str, name: str) -> bytes | None:
        try:
            return self.store.read(self._path(kind, name))
        except (NotFound, NameTooLong):
            return None

    def put(self, kind: str, name: str, data: bytes) -> None:
        for folder in (self.folder, self._path(kind)):
            if not self.store.exists(folder):
                try:
                    self.store.mkdir(folder)
                except AlreadyExists:
                    pass
        self.store.write(self._path(kind, name), data)

    def delete(self, kind: str, name: str) -> bool:
        try:
            self.store.delete(self._path(kind, name))
        except (NotFound, NameTooLong):
            return False
        return True

    def names(self, kind: str) -> list[str]:
        try:
            entries = self.store.list(self._path(kind))
        except NotFound:
            return []
        return sorted(unquote(entry.name) for entry in entries if entry.kind == "file")


def open_user_state(store: Store) -> UserState:
    """Where this deployment keeps per-user state: the shared store, or the data folder."""
    if getattr(store, "shares_state", False):
        return StoreState(store)
    return FolderState(runtime.data_dir() / "frontend")
