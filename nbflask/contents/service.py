"""The contents service: Jupyter's REST models on top of any store, knowing nothing of HTTP.

It turns store entries and bytes into the models of the Jupyter Server contents API (types
notebook/file/directory, text/base64/json formats, hashes), applies the rules every store
shares (hidden files, untitled and copy names, single or several checkpoints, chunked
uploads, notebook upgrade, validation and trust) and the compare-and-swap of If-Match, given
as a predicate on etags. Turning a notebook's bytes into nodes and back (parse, upgrade,
validate, sign, serialise) takes a large notebook a good part of a second of CPU, so it runs
off the gevent loop (`run_blocking`); the store calls stay where they were.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..blocking import run_blocking, run_blocking_if
from ..clock import isoformat, utcnow
from ..stores.base import (
    BadContent,
    Conflict,
    Entry,
    InvalidPath,
    NotFound,
    Store,
    StoreError,
    normalize_path,
)
from . import names, notebooks
from .trust import Trust

#: Tells whether an etag satisfies the client's If-Match; None when the client sent none.
IfMatch = Callable[[str], bool] | None

HASH_ALGORITHM = "sha256"
#: A folder listing with this many entries has its models made off the gevent loop.
MANY_ENTRIES = 1000
KINDS = ("directory", "file", "notebook")
#: `store.checkpoints`: Jupyter's one checkpoint per file, or several with time-stamped ids.
CHECKPOINT_MODES = ("single", "multiple")


def is_hidden(path: str) -> bool:
    return any(part.startswith(".") for part in path.split("/"))


def kind_of(entry: Entry) -> str:
    if entry.kind == "directory":
        return "directory"
    return "notebook" if entry.path.endswith(".ipynb") else "file"


@dataclass
class Reply:
    """A model and the version it describes (for the ETag and Last-Modified headers)."""

    model: dict[str, Any]
    etag: str | None
    last_modified: datetime


class Contents:
    """Jupyter's contents API over one store."""

    def __init__(
        self,
        store: Store,
        trust: Trust,
        *,
        allow_hidden: bool = False,
        max_checkpoints: int = 5,
        checkpoints: str = "single",
    ) -> None:
        if checkpoints not in CHECKPOINT_MODES:
            raise ValueError(f"checkpoints: expected single or multiple, found {checkpoints!r}")
        self.store = store
        self.trust = trust
        self.notebooks = notebooks.Notebooks()
        self.allow_hidden = allow_hidden
        self.max_checkpoints = max_checkpoints
        self.single_checkpoint = checkpoints == "single"

    # -- helpers -----------------------------------------------------------------------
    def hidden(self, path: str) -> bool:
        """Whether `path` is out of reach as hidden: a name starting with '.' on the way, or a
        visible link that leads into a hidden folder or to a hidden file (the store resolves
        it), unless hidden files are allowed. The one rule of the API, /files/ and resolvePath."""
        if self.allow_hidden:
            return False
        return is_hidden(path) or is_hidden(self.store.real_path(path))

    def _path(self, path: str, action: str | None = None) -> str:
        """Normalise; refuse hidden paths (404 to readers, 400 to writers) unless allowed."""
        path = normalize_path(path)
        if self.hidden(path):
            if action is None:
                raise NotFound(f"file or directory '{path}' does not exist")
            raise InvalidPath(f"Cannot {action} file or directory '{path}': hidden files are not allowed")
        return path

    def _listed(self, entry: Entry) -> bool:
        """Whether a directory listing shows `entry`: what `hidden` refuses is not listed."""
        return self.allow_hidden or not (is_hidden(entry.name) or is_hidden(entry.real_path or ""))

    def _stat(self, path: str) -> Entry:
        try:
            return self.store.stat(path)
        except NotFound:
            raise NotFound(f"file or directory '{path}' does not exist") from None

    def _expected_etag(self, path: str, if_match: IfMatch) -> str | None:
        """The etag the store must still hold for the change to go through (If-Match)."""
        if if_match is None:
            return None
        try:
            entry = self.store.stat(path)
        except NotFound:
            raise Conflict(f"'{path}' does not exist any more (If-Match failed)") from None
        if entry.etag is None or not if_match(entry.etag):
            raise Conflict(f"'{path}' was changed since you loaded it (If-Match failed); reload it")
        return entry.etag

    def _model(self, entry: Entry, kind: str | None = None) -> dict[str, Any]:
        kind = kind or kind_of(entry)
        return {
            "name": entry.name,
            "path": entry.path,
            "last_modified": isoformat(entry.last_modified),
            "created": isoformat(entry.created),
            "content": None,
            "format": None,
            "mimetype": mimetypes.guess_type(entry.name)[0] if kind == "file" else None,
            "size": entry.size,
            "writable": entry.writable,
            "hash": None,
            "hash_algorithm": None,
            "type": kind,
        }

    def _reply(self, entry: Entry, kind: str | None = None, message: str | None = None) -> Reply:
        model = self._model(entry, kind)
        if message:
            model["message"] = message
        return Reply(model, entry.etag, entry.last_modified)

    def _child(self, directory: str, name: str) -> str:
        return f"{directory}/{name}" if directory else name

    def _taken(self, directory: str) -> Callable[[str], bool]:
        return lambda name: self.store.exists(self._child(directory, name))

    # -- notebook documents: CPU-bound, so run off the gevent loop (run_blocking) ---------
    def _notebook_of(self, data: bytes, path: str) -> tuple[Any, str | None]:
        """Stored bytes as a notebook marked with its trust, and its validation message."""
        nb, message = self.notebooks.read(data, path)
        self.trust.mark(nb)
        return nb, message

    def _notebook_bytes(self, body: dict[str, Any]) -> tuple[bytes, str | None]:
        """The bytes to store for a save's `content` (a new notebook without one), signed if
        trusted, and the validation message. Takes the content out of `body`: the notebook
        is changed in place while it is serialised, never copied."""
        nb = notebooks.from_model(body.pop("content")) if "content" in body else notebooks.new()
        self.trust.sign_if_trusted(nb)
        return self.notebooks.dumps(nb)

    def _sign_stored(self, data: bytes, path: str) -> None:
        nb, _ = self.notebooks.read(data, path)
        self.trust.sign(nb)

    # -- read --------------------------------------------------------------------------
    def get(
        self,
        path: str,
        *,
        type: str | None = None,
        format: str | None = None,
        content: bool = True,
        want_hash: bool = False,
    ) -> Reply:
        """The model of a file, notebook or directory, with or without its content."""
        path = self._path(path)
        entry = self._stat(path)
        if entry.kind == "directory":
            if type not in (None, "directory"):
                raise BadContent(f"{path} is a directory, not a {type}", "bad type")
            return self._directory(entry, content)
        if type == "directory":
            raise BadContent(f"{path} is not a directory", "bad type")
        kind = "notebook" if type == "notebook" or (type is None and path.endswith(".ipynb")) else "file"
        reply = self._reply(entry, kind)
        if not content and not want_hash:
            return reply
        data = self.store.read(path)
        model = reply.model
        if want_hash:
            model["hash"] = hashlib.new(HASH_ALGORITHM, data).hexdigest()
            model["hash_algorithm"] = HASH_ALGORITHM
        if content and kind == "notebook":
            nb, message = run_blocking(self._notebook_of, data, path)
            del data
            model.update(content=nb, format="json")
            if message:
                model["message"] = message
        elif content:
            self._file_content(model, data, format, path)
        return reply

    def _file_content(self, model: dict[str, Any], data: bytes, format: str | None, path: str) -> None:
        if format in (None, "text"):
            try:
                model.update(content=data.decode("utf-8"), format="text")
                model["mimetype"] = model["mimetype"] or "text/plain"
                return
            except UnicodeDecodeError:
                if format == "text":
                    raise BadContent(f"'{path}' is not UTF-8 encoded", "bad format") from None
        model.update(content=base64.b64encode(data).decode("ascii"), format="base64")
        model["mimetype"] = model["mimetype"] or "application/octet-stream"

    def _directory(self, entry: Entry, content: bool) -> Reply:
        reply = self._reply(entry, "directory")
        if content:
            listed = [child for child in self.store.list(entry.path) if self._listed(child)]
            # 20 us an entry: a folder of 20,000 files held the loop 0.4 s on every listing.
            children = run_blocking_if(len(listed) >= MANY_ENTRIES, self._models, listed)
            reply.model.update(content=children, format="json")
        return reply

    def _models(self, entries: list[Entry]) -> list[dict[str, Any]]:
        return [self._model(entry) for entry in entries]

    # -- save --------------------------------------------------------------------------
    def save(self, path: str, body: dict[str, Any] | None, if_match: IfMatch = None) -> tuple[Reply, bool]:
        """PUT: save or upload; returns the model and whether the entry is new (201)."""
        if not body:
            return self.new_untitled(path), True
        if body.get("copy_from"):
            raise BadContent("Cannot copy with PUT, only POST")
        path = self._path(path, "create")
        if isinstance(body.get("path"), str):
            self._path(body["path"], "create")
        if not path:
            raise InvalidPath("Cannot save over the root folder")
        kind = body.get("type") or ("notebook" if path.endswith(".ipynb") else "file")
        if kind not in KINDS:
            kind = "file"
        expected = self._expected_etag(path, if_match)
        if "chunk" in body:
            existed = self.store.exists(path)
            return self._save_chunk(path, kind, body, expected), not existed and body["chunk"] in (1, -1)
        if kind == "directory":
            existed = self.store.exists(path)
            return self._save_directory(path, existed), not existed
        if "content" not in body and self.store.exists(path):
            raise BadContent("No file content provided")
        if kind == "notebook":
            data, message = run_blocking(self._notebook_bytes, body)
            entry, new = self.store.save(path, data, if_match=expected)
            if new:
                self._first_checkpoint(entry)
            else:
                self.store.ensure_checkpoint(path, single=self.single_checkpoint)
            return self._reply(entry, "notebook", message), new
        entry, new = self.store.save(path, self._file_bytes(body, path), if_match=expected)
        return self._reply(entry, "file"), new

    def _save_chunk(self, path: str, kind: str, body: dict[str, Any], expected: str | None) -> Reply:
        """One chunk of an upload as JupyterLab sends big files: `chunk` 1, 2, 3, ..., then -1.

        The chunks are staged by the store and the file changes only at the last one, in one
        atomic step, so an upload that fails or is abandoned leaves the old file. Until then
        the reply describes the upload in progress (no size, no version yet).
        """
        chunk = body["chunk"]
        if kind != "file":
            raise BadContent(f'File type "{kind}" is not supported for large file transfer')
        if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk == 0 or chunk < -1:
            raise BadContent(f"chunk must be 1, 2, 3, ... or -1 for the last one, found {chunk!r}")
        if "content" not in body:
            raise BadContent("No file content provided")
        data = self._file_bytes(body, path)
        if chunk == -1:
            return self._reply(self.store.commit_upload(path, data, if_match=expected), "file")
        self.store.stage_chunk(path, chunk, data)
        now = utcnow()
        return self._reply(Entry(path=path, kind="file", created=now, last_modified=now), "file")

    def _save_directory(self, path: str, existed: bool) -> Reply:
        if existed:
            entry = self.store.stat(path)
            if entry.kind != "directory":
                raise BadContent(f"'{path}' exists and is a file, not a directory")
            return self._reply(entry, "directory")
        return self._reply(self.store.mkdir(path), "directory")

    @staticmethod
    def _file_bytes(body: dict[str, Any], path: str) -> bytes:
        if "content" not in body:
            return b""
        content, format = body["content"], body.get("format")
        if format not in ("text", "base64"):
            raise BadContent("Must specify format of file contents as 'text' or 'base64'", "bad format")
        if not isinstance(content, str):
            raise BadContent(f"file content must be a string, found {type(content).__name__}")
        try:
            if format == "text":
                return content.encode("utf-8")
            return base64.b64decode(content.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise BadContent(f"Encoding error saving '{path}': {exc}", "bad format") from None

    def _first_checkpoint(self, entry: Entry) -> None:
        """Give a notebook just made the checkpoint every notebook has, as in Jupyter. If it
        cannot be made (no room: 507), the notebook is taken back, unless someone saved over
        it meanwhile, so the client that is told of the failure finds nothing it did not ask
        for, and keeps its content to save again."""
        try:
            self.store.ensure_checkpoint(entry.path, single=self.single_checkpoint, new=True)
        except StoreError:
            self._take_back(entry.path, entry.etag)
            raise

    def _take_back(self, path: str, etag: str | None = None) -> None:
        """Delete what a request made before it failed, as far as the store lets us: the
        request's own error is what the client hears. With `etag`, only that version: one
        saved over it meanwhile (Conflict) is not ours to take back."""
        try:
            self.store.delete(path, if_match=etag)
        except StoreError:
            pass

    # -- create ------------------------------------------------------------------------
    def _directory_for_new(self, directory: str) -> str:
        try:
            entry = self.store.stat(directory)
        except NotFound:
            raise NotFound(f"No such directory: '{directory}'") from None
        if entry.kind != "directory":
            raise BadContent("Cannot POST to files, use PUT instead.")
        return directory

    def new_untitled(self, directory: str, kind: str = "", ext: str = "") -> Reply:
        """POST: a new `Untitled.ipynb`, `untitled.txt` or `Untitled Folder` in `directory`."""
        directory = self._directory_for_new(self._path(directory, "create"))
        if kind not in KINDS:
            kind = "notebook" if ext == ".ipynb" else "file"
        if ext and ("/" in ext or normalize_path(ext) != ext):
            raise BadContent(f"invalid file extension {ext!r}")
        name = names.untitled(kind, ext or "", self._taken(directory))
        path = self._child(directory, name)
        if kind == "directory":
            return self._reply(self.store.mkdir(path), "directory")
        if kind == "notebook":
            entry = self.store.write(path, self._notebook_bytes({})[0])
            self._first_checkpoint(entry)
            return self._reply(entry, "notebook")
        return self._reply(self.store.write(path, b""), "file")

    def copy(self, source: str, directory: str) -> Reply:
        """POST with copy_from: a byte-exact copy of a file, or a deep copy of a directory,
        named `name-Copy1.ext` (`name-Copy1` for a directory) in `directory`, as Jupyter.

        Jupyter's checks, in its order: a target that is a file is 400, then a hidden target or
        source is 400 before either is looked for, then a missing source is 404. A directory
        copied into a folder that does not exist yet creates that folder (and its parents);
        a file needs an existing folder. A copy that fails takes the folders it made with it.
        A folder's copy leaves out what a listing of it leaves out (hidden names, links into
        hidden places), unlike Jupyter's, which copied what a link hid into plain sight.
        """
        directory, source = normalize_path(directory), normalize_path(source)
        target = self._find(directory)
        if target is not None and target.kind != "directory":
            raise BadContent("Cannot POST to files, use PUT instead.")
        if self.hidden(directory) or self.hidden(source):
            raise InvalidPath(f"Cannot copy file or directory '/{directory}'")
        entry = self._stat(source)
        if target is None and entry.kind != "directory":
            raise NotFound(f"No such directory: '{directory}'")
        name = names.copy_name(entry.name, self._taken(directory))
        copy_path = self._child(directory, name)
        if entry.kind == "directory" and copy_path.startswith(source + "/"):
            raise InvalidPath(f"cannot copy '{source}' into itself")
        made = self._make_folders(directory) if target is None else None
        try:
            copied = self.store.copy(source, copy_path, keep=None if self.allow_hidden else self._listed)
            if kind_of(copied) == "notebook":
                self._first_checkpoint(copied)
        except StoreError:
            if made is not None:
                self._take_back(made)
            raise
        return self._reply(copied)

    def _find(self, path: str) -> Entry | None:
        try:
            return self.store.stat(path)
        except NotFound:
            return None

    def _make_folders(self, directory: str) -> str | None:
        """Make the missing folders of `directory`, as Jupyter's copy of a folder does (its
        copytree); returns the topmost one made (if another request made them all meanwhile,
        none), so a failed copy can take them back."""
        parts = directory.split("/")
        made = None
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            existing = None if made is not None else self._find(folder)
            if existing is None:
                self.store.mkdir(folder)
                made = made or folder
            elif existing.kind != "directory":
                raise BadContent(f"Cannot copy into '{directory}': '{folder}' is a file, not a folder")
        return made

    # -- rename, delete ----------------------------------------------------------------
    def rename(self, path: str, new_path: Any, if_match: IfMatch = None) -> Reply:
        """PATCH: move a file or directory; 409 if the new path is taken."""
        if not isinstance(new_path, str):
            raise BadContent("Rename needs a JSON body with the new 'path'")
        path = self._path(path, "rename")
        new_path = self._path(new_path, "rename")
        if not path or not new_path:
            raise InvalidPath("Cannot rename the root folder")
        if new_path == path:
            self._expected_etag(path, if_match)
            return self._reply(self._stat(path))
        expected = self._expected_etag(path, if_match)
        self._stat(path)
        return self._reply(self.store.rename(path, new_path, if_match=expected))

    def delete(self, path: str, if_match: IfMatch = None) -> None:
        """DELETE: a file with its checkpoints, or a directory with everything in it (Jupyter
        sends it to the trash by default; there is no trash here)."""
        path = self._path(path, "delete")
        if not path:
            raise InvalidPath("Cannot delete the root folder")
        expected = self._expected_etag(path, if_match)
        self._stat(path)
        self.store.delete(path, if_match=expected)

    # -- checkpoints and trust ---------------------------------------------------------
    @staticmethod
    def _checkpoint_model(checkpoint: Any) -> dict[str, str]:
        return {"id": checkpoint.id, "last_modified": isoformat(checkpoint.last_modified)}

    def list_checkpoints(self, path: str) -> list[dict[str, str]]:
        """The file's checkpoints; none for a path with no file, as Jupyter answers (JupyterLab
        asks for the old name's right after a rename)."""
        path = self._path(path)
        try:
            self.store.stat(path)
        except NotFound:
            return []
        return [self._checkpoint_model(c) for c in self.store.list_checkpoints(path)]

    def create_checkpoint(self, path: str) -> dict[str, str]:
        """POST: (re)make the file's one checkpoint, or with `multiple` a new one, deleting the
        oldest past `max_checkpoints`. In single mode the pruning also drops checkpoints kept
        while `multiple` was set (the single id sorts after time-stamped ones: it is kept)."""
        path = self._path(path)
        self._stat(path)
        checkpoint = self.store.create_checkpoint(path, single=self.single_checkpoint)
        self.store.prune_checkpoints(path, 1 if self.single_checkpoint else self.max_checkpoints)
        return self._checkpoint_model(checkpoint)

    def restore_checkpoint(self, path: str, checkpoint_id: str) -> None:
        path = self._path(path)
        self._stat(path)
        self.store.restore_checkpoint(path, checkpoint_id)

    def delete_checkpoint(self, path: str, checkpoint_id: str) -> None:
        path = self._path(path)
        self._stat(path)
        self.store.delete_checkpoint(path, checkpoint_id)

    def trust_notebook(self, path: str) -> None:
        """Trust a notebook's current outputs (the user vouches for them)."""
        path = self._path(path)
        entry = self._stat(path)
        if entry.kind == "directory":
            raise BadContent(f"'{path}' is a directory, not a notebook", "bad type")
        run_blocking(self._sign_stored, self.store.read(path), path)

    # -- raw files ---------------------------------------------------------------------
    def open_download(self, path: str) -> tuple[Entry, Any]:
        """The entry and a chunk iterator of a file, for /files/ (hidden rules apply)."""
        path = self._path(path)
        if self._stat(path).kind == "directory":
            raise NotFound(f"'{path}' is a directory, not a file")
        return self.store.open_stream(path)
