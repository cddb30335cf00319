"""The default store: notebooks and files in a folder on disk (`store.root_dir`).

Saves are atomic and durable: the new content goes to a temporary file in the same folder,
is fsync'ed, then renamed over the old one (and the folder fsync'ed), so a crash at any
moment leaves the old or the new complete file, never a mix. Chunked uploads append to a
hidden staging file beside the target, renamed over it at the last chunk. Checkpoints live
beside the files in `.ipynb_checkpoints/` with Jupyter's names (`name-checkpoint.ext` for the
single one, `name-checkpoint-<id>.ext` when several are kept).

Nothing outside `root_dir` is ever read or written: every path is resolved (symlinks
included) and refused with NotFound when it lands outside the root.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..blocking import run_blocking
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
    no_upload,
    os_error,
    upload_failed,
)

#: Folder beside the files that holds their checkpoints; never listed nor reachable by path.
CHECKPOINT_DIR = ".ipynb_checkpoints"
#: Prefix of the temporary files of saves in progress; never listed.
TEMP_PREFIX = ".~nbflask-"
_CHECKPOINT_ID = re.compile(rf"\d{{20}}|{SINGLE_CHECKPOINT}")
#: A temp file this old belongs to a save that died; listing its folder removes it.
STALE_TEMP_SECONDS = 3600


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def _etag(info: os.stat_result) -> str:
    """Changes with every save: the inode changes on rename and mtime is set to the nanosecond."""
    return f"{info.st_ino:x}-{info.st_mtime_ns:x}-{info.st_size:x}"


def _addressable(name: str) -> bool:
    """Whether the API can name this entry: UTF-8, no backslash, no control character."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\\" not in name and not any(ord(c) < 32 for c in name)


def _remove(os_path: str) -> None:
    """Remove a temp file that did not make it; one already gone is fine."""
    try:
        os.unlink(os_path)
    except OSError:
        pass


def _write_all(fd: int, data: bytes, os_path: str, path: str) -> None:
    """Write every byte to the open temp file `os_path`; on failure close and remove it."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException as exc:
        os.close(fd)
        _remove(os_path)
        if isinstance(exc, OSError):
            raise os_error(exc, path) from None
        raise


def _mode_of(os_path: str) -> int | None:
    """The permission bits of the entry at `os_path`, None if there is none: what a file
    written in its place keeps (a private notebook stays private)."""
    try:
        return stat.S_IMODE(os.stat(os_path).st_mode)
    except FileNotFoundError:
        return None


def _create(os_path: str, path: str, mode: int | None, flags: int) -> int:
    """Open a new file for writing with `mode` from the start (else the umask's default), so
    not even a temp file of a private notebook is readable by others for a moment."""
    try:
        flags |= os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        return os.open(os_path, flags, 0o666 if mode is None else mode)
    except OSError as exc:
        raise os_error(exc, path) from None


def _failed_mark(staging: str) -> str:
    """The empty file beside a staging file that says its upload lost a chunk."""
    return staging.removesuffix(".part") + ".failed"


def _fail_upload(failed: str) -> None:
    """Mark an upload failed (its staging file is gone already). The mark is an empty file,
    which needs no room; if even it cannot be made, later chunks are still refused (they
    find no upload) and only a lone last chunk would pass, as the whole file."""
    try:
        os.close(os.open(failed, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except OSError:
        pass


class FileStore(Store):
    """Files under `root_dir`; `fsync: false` trades durability on power loss for speed."""

    name = "file"

    def __init__(self, root_dir: str = ".", fsync: bool = True, **options: Any) -> None:
        super().__init__(**options)
        if not isinstance(fsync, bool):
            raise ValueError(f"fsync: expected true/false, found {fsync!r}")
        root = Path(str(root_dir)).expanduser()
        if not root.is_dir():
            raise ValueError(f"root_dir: expected an existing folder, found no folder at '{root_dir}'")
        self.root = os.path.realpath(root)
        self.fsync = fsync

    # -- paths -------------------------------------------------------------------------
    def _inside(self, os_path: str) -> bool:
        return os_path == self.root or os_path.startswith(self.root + os.sep)

    def _resolve(self, path: str) -> str:
        """The real OS path of `path`, following symlinks; NotFound if it leaves the root."""
        parts = path.split("/") if path else []
        if CHECKPOINT_DIR in parts or any(p.startswith(TEMP_PREFIX) for p in parts):
            raise NotFound(f"no such file or directory: '{path}'")
        real = os.path.realpath(os.path.join(self.root, *parts))
        if not self._inside(real):
            raise NotFound(f"no such file or directory: '{path}' (it leads outside the root)")
        return real

    def _resolve_link(self, path: str) -> str:
        """The OS path of the entry itself (a symlink stays a symlink), for rename and delete."""
        if not path:
            raise InvalidPath("the root folder cannot be renamed or deleted")
        parent, _, name = path.rpartition("/")
        self._resolve(path)
        return os.path.join(self._resolve(parent), name)

    def _entry(self, path: str, info: os.stat_result, os_path: str, real_path: str | None = None) -> Entry:
        is_dir = stat.S_ISDIR(info.st_mode)
        return Entry(
            path=path,
            kind="directory" if is_dir else "file",
            created=_time(min(info.st_ctime, info.st_mtime)),
            last_modified=_time(info.st_mtime),
            size=None if is_dir else info.st_size,
            etag=("d" if is_dir else "") + _etag(info),
            writable=os.access(os_path, os.W_OK),
            real_path=real_path,
        )

    def _stat(self, path: str) -> tuple[str, os.stat_result]:
        os_path = self._resolve(path)
        try:
            info = os.stat(os_path)
        except OSError as exc:
            raise os_error(exc, path) from None
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
            raise NotFound(f"'{path}' is not a regular file or directory")
        return os_path, info

    def _api_path(self, real: str) -> str:
        """The API path of an OS path inside the root."""
        return os.path.relpath(real, self.root).replace(os.sep, "/") if real != self.root else ""

    def real_path(self, path: str) -> str:
        """The API path of the entry once symlinks (inside the root) are followed."""
        return self._api_path(self._resolve(path))

    # -- reading -----------------------------------------------------------------------
    def stat(self, path: str) -> Entry:
        os_path, info = self._stat(path)
        return self._entry(path, info, os_path)

    def list(self, path: str) -> list[Entry]:
        os_path, info = self._stat(path)
        if not stat.S_ISDIR(info.st_mode):
            raise InvalidPath(f"'{path}' is not a directory")
        entries = []
        try:
            with os.scandir(os_path) as scan:
                children = list(scan)
        except OSError as exc:
            raise os_error(exc, path) from None
        for child in children:
            name = child.name
            if name.startswith(TEMP_PREFIX):
                self._sweep(child)
                continue
            if name == CHECKPOINT_DIR:
                continue
            if not _addressable(name):
                continue
            child_path = f"{path}/{name}" if path else name
            real_path = None
            try:
                if child.is_symlink():
                    real = os.path.realpath(child.path)
                    if not self._inside(real):
                        continue
                    real_path = self._api_path(real)
                child_info = child.stat()
            except OSError:
                continue  # broken symlink, or gone meanwhile
            if stat.S_ISREG(child_info.st_mode) or stat.S_ISDIR(child_info.st_mode):
                entries.append(self._entry(child_path, child_info, child.path, real_path))
        return entries

    @staticmethod
    def _sweep(child: os.DirEntry) -> None:
        """Remove the temp file of a save that died (SIGKILL, power loss) long ago."""
        try:
            if time.time() - child.stat(follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS:
                os.unlink(child.path)
        except OSError:
            pass

    def read(self, path: str) -> bytes:
        os_path, info = self._stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise InvalidPath(f"'{path}' is a directory, not a file")
        return self._read_os(os_path, path)

    def open_stream(self, path: str, chunk_size: int = 1 << 20) -> tuple[Entry, Iterator[bytes]]:
        """Stream from one open file, so the entry describes exactly the bytes sent."""
        os_path, info = self._stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise InvalidPath(f"'{path}' is a directory, not a file")
        try:
            handle = open(os_path, "rb")  # noqa: SIM115 - closed by the generator
        except OSError as exc:
            raise os_error(exc, path) from None
        entry = self._entry(path, os.fstat(handle.fileno()), os_path)

        def chunks() -> Iterator[bytes]:
            with handle:
                while block := handle.read(chunk_size):
                    yield block

        return entry, chunks()

    # -- writing -----------------------------------------------------------------------
    @contextmanager
    def _locked(self, os_dir: str) -> Iterator[None]:
        """Hold an exclusive lock on a folder, so compare-and-swap holds across processes.

        Every holder runs through `run_blocking`: under gevent a flock that waits on the hub
        thread would stop the greenlet that holds the lock from ever releasing it.
        """
        fd = os.open(os_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _current_etag(self, os_path: str) -> str | None:
        try:
            info = os.stat(os_path)
        except FileNotFoundError:
            return None
        return ("d" if stat.S_ISDIR(info.st_mode) else "") + _etag(info)

    def _check(self, os_path: str, path: str, if_match: str | None) -> None:
        if if_match is not None and self._current_etag(os_path) != if_match:
            raise Conflict(f"'{path}' changed since version {if_match}")

    def _fsync_dir(self, os_dir: str) -> None:
        if not self.fsync:
            return
        fd = os.open(os_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _atomic_write(
        self, os_path: str, path: str, data: bytes, if_match: str | None = None, mode: int | None = None
    ) -> tuple[Entry, bool]:
        """Write off the gevent hub: an fsync can take tens of milliseconds on a real disk."""
        return run_blocking(self._write_now, os_path, path, data, if_match, mode)

    def _write_now(
        self, os_path: str, path: str, data: bytes, if_match: str | None, mode: int | None
    ) -> tuple[Entry, bool]:
        """Write a temp file in the same folder, then install it over the target. It gets
        `mode` (a checkpoint or copy: its source's), else the mode of the file it replaces."""
        mode = _mode_of(os_path) if mode is None else mode
        tmp = os.path.join(os.path.dirname(os_path), f"{TEMP_PREFIX}{secrets.token_hex(8)}.tmp")
        fd = _create(tmp, path, mode, os.O_EXCL)
        _write_all(fd, data, tmp, path)
        return self._install(fd, tmp, os_path, path, if_match, mode)

    def _install(
        self, fd: int, tmp: str, os_path: str, path: str, if_match: str | None, mode: int | None
    ) -> tuple[Entry, bool]:
        """Give the finished temp file (open as `fd`, closed here) `mode` exactly (the umask
        may have narrowed it), fsync it and rename it over the target under the folder lock;
        on any failure it is removed. Returns its entry and whether it made the file: that is
        decided under the lock, so of clients creating one file at once exactly one is told
        so (and gives a new notebook its first checkpoint, or takes it back on failure)."""
        folder = os.path.dirname(os_path)
        try:
            try:
                if mode is not None:
                    os.fchmod(fd, mode)
                if self.fsync:
                    os.fsync(fd)
                now = time.time_ns()
                os.utime(fd, ns=(now, now))
                info = os.fstat(fd)
            finally:
                os.close(fd)
            with self._locked(folder):
                self._check(os_path, path, if_match)
                if os.path.isdir(os_path):
                    raise InvalidPath(f"'{path}' is a directory")
                new = not os.path.lexists(os_path)
                os.replace(tmp, os_path)
        except BaseException as exc:
            _remove(tmp)
            if isinstance(exc, OSError):
                raise os_error(exc, path) from None
            raise
        self._fsync_dir(folder)
        return self._entry(path, info, os_path), new

    def write(self, path: str, data: bytes, if_match: str | None = None) -> Entry:
        return self.save(path, data, if_match)[0]

    def save(self, path: str, data: bytes, if_match: str | None = None) -> tuple[Entry, bool]:
        """`write`, and whether it made the file, as the rename found the place (no look
        before: six clients creating one notebook at once were all told it was new)."""
        if not path:
            raise InvalidPath("the root folder is not a file")
        os_path = self._resolve(path)
        if not os.path.isdir(os.path.dirname(os_path)):
            raise NotFound(f"no such directory: '{path.rpartition('/')[0]}'")
        return self._atomic_write(os_path, path, data, if_match)

    def copy(self, source: str, target: str, keep: CopyFilter | None = None) -> Entry:
        """The contract's copy, keeping the mode of every file and folder copied (as Jupyter's
        copy of a folder does), so a private notebook's copy is private too. A link inside
        the folder is copied as what it leads to, as Jupyter's copy does; one that leads to a
        folder holding it (`loop -> ..`) or the copy would make the copy endless, so the copy
        is refused and what it made is removed. The walk reads and fsyncs every file: it runs
        off the gevent loop."""
        return run_blocking(self._copy_now, source, target, keep)

    def _copy_now(self, source: str, target: str, keep: CopyFilter | None) -> Entry:
        source_os, info = self._stat(source)
        target_os = self._resolve(target)
        if os.path.lexists(target_os):
            raise AlreadyExists(f"'{target}' already exists")
        if not os.path.isdir(os.path.dirname(target_os)):
            raise NotFound(f"no such directory: '{target.rpartition('/')[0]}'")
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISDIR(info.st_mode):
            return self._write_now(target_os, target, self._read_os(source_os, source), None, mode)[0]
        if (target_os + os.sep).startswith(source_os + os.sep):
            raise InvalidPath(f"cannot copy '{source}' into itself")
        self._mkdir_private(target_os, target)
        try:
            self._copy_folder(source, source_os, target, target_os, keep, (source_os, target_os))
            os.chmod(target_os, mode)
        except BaseException as exc:
            shutil.rmtree(target_os, ignore_errors=True)
            if isinstance(exc, OSError):
                raise os_error(exc, target) from None
            raise
        self._fsync_dir(os.path.dirname(target_os))
        return self.stat(target)

    @staticmethod
    def _mkdir_private(os_path: str, path: str) -> None:
        """A folder of a copy, only ours until its content is in (then it gets its mode)."""
        try:
            os.mkdir(os_path, 0o700)
        except OSError as exc:
            raise os_error(exc, path) from None

    @staticmethod
    def _read_os(os_path: str, path: str) -> bytes:
        try:
            with open(os_path, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise os_error(exc, path) from None

    def _copy_folder(
        self,
        source: str,
        source_os: str,
        target: str,
        target_os: str,
        keep: CopyFilter | None,
        on_the_way: tuple[str, ...],
    ) -> None:
        """Copy what the folder `source` (really at `source_os`) holds into the new folder
        `target_os`. `on_the_way`: the real folders being copied from here up, and the copy;
        a folder that is one of them or holds one is refused, else the copy would not end."""
        for child in self.list(source):
            if keep is not None and not keep(child):
                continue
            child_os = os.path.realpath(os.path.join(source_os, child.name))
            child_target, child_target_os = f"{target}/{child.name}", os.path.join(target_os, child.name)
            mode = stat.S_IMODE(os.stat(child_os).st_mode)
            if child.kind == "file":
                data = self._read_os(child_os, child.path)
                self._write_now(child_target_os, child_target, data, None, mode)
                continue
            if any((folder + os.sep).startswith(child_os + os.sep) for folder in on_the_way):
                raise InvalidPath(
                    f"cannot copy '{child.path}': it links to a folder that holds it or the copy,"
                    " so the copy would never end"
                )
            self._mkdir_private(child_target_os, child_target)
            inner = (*on_the_way, child_os)
            self._copy_folder(child.path, child_os, child_target, child_target_os, keep, inner)
            os.chmod(child_target_os, mode)
        self._fsync_dir(target_os)

    # -- chunked uploads ---------------------------------------------------------------
    def _staging(self, path: str) -> str:
        """The OS path of the upload staging file of `path`: hidden, beside the target, named
        by a hash so every worker process finds the same one; checked like `write`."""
        if not path:
            raise InvalidPath("the root folder is not a file")
        os_path = self._resolve(path)
        folder = os.path.dirname(os_path)
        if not os.path.isdir(folder):
            raise NotFound(f"no such directory: '{path.rpartition('/')[0]}'")
        if os.path.isdir(os_path):
            raise InvalidPath(f"'{path}' is a directory")
        digest = hashlib.sha256(os.path.basename(os_path).encode("utf-8", "surrogateescape")).hexdigest()
        return os.path.join(folder, f"{TEMP_PREFIX}upload-{digest[:32]}.part")

    def stage_chunk(self, path: str, number: int, data: bytes) -> None:
        run_blocking(self._stage_now, path, number, data)

    def _stage_now(self, path: str, number: int, data: bytes) -> None:
        staging = self._staging(path)
        failed = _failed_mark(staging)
        if number == 1:
            # A fresh file with the mode of the file it will replace from the start, but one
            # we may write to (a read-only target's chunk 2 could not open it): the install
            # gives it the target's mode exactly.
            _remove(staging)
            _remove(failed)
            mode = _mode_of(self._resolve(path))
            writable = None if mode is None else mode | stat.S_IWUSR
            fd = _create(staging, path, writable, os.O_APPEND | os.O_TRUNC)
        else:
            try:
                fd = os.open(staging, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            except FileNotFoundError:
                raise (upload_failed(path) if os.path.exists(failed) else no_upload(path, number)) from None
            except OSError as exc:
                raise os_error(exc, path) from None
        try:
            _write_all(fd, data, staging, path)
        except StoreError:
            _fail_upload(failed)
            raise
        os.close(fd)

    def commit_upload(self, path: str, data: bytes, if_match: str | None = None) -> Entry:
        return run_blocking(self._commit_now, path, data, if_match)

    def _commit_now(self, path: str, data: bytes, if_match: str | None) -> Entry:
        staging = self._staging(path)
        failed = _failed_mark(staging)
        try:
            fd = os.open(staging, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            if os.path.exists(failed):
                raise upload_failed(path) from None
            return self._write_now(self._resolve(path), path, data, if_match, None)[0]
        except OSError as exc:
            raise os_error(exc, path) from None
        os_path = self._resolve(path)
        try:
            _write_all(fd, data, staging, path)
            return self._install(fd, staging, os_path, path, if_match, _mode_of(os_path))[0]
        except StoreError:
            _fail_upload(failed)
            raise

    def mkdir(self, path: str) -> Entry:
        if not path:
            raise AlreadyExists("the root folder already exists")
        os_path = self._resolve(path)
        try:
            os.mkdir(os_path)
        except OSError as exc:
            raise os_error(exc, path) from None
        self._fsync_dir(os.path.dirname(os_path))
        return self.stat(path)

    def delete(self, path: str, if_match: str | None = None) -> None:
        run_blocking(self._delete_now, path, if_match)

    def _delete_now(self, path: str, if_match: str | None) -> None:
        os_path = self._resolve_link(path)
        folder = os.path.dirname(os_path)
        is_dir = os.path.isdir(os_path) and not os.path.islink(os_path)
        with self._locked(folder):
            self._check(os_path, path, if_match)
            try:
                if is_dir:
                    shutil.rmtree(os_path)
                else:
                    os.unlink(os_path)
            except OSError as exc:
                raise os_error(exc, path) from None
        if not is_dir:
            for _, cp_path in self._checkpoint_files(os_path):
                os.unlink(cp_path)
        self._fsync_dir(folder)

    def rename(self, old_path: str, new_path: str, if_match: str | None = None) -> Entry:
        return run_blocking(self._rename_now, old_path, new_path, if_match)

    def _rename_now(self, old_path: str, new_path: str, if_match: str | None) -> Entry:
        old_os = self._resolve_link(old_path)
        new_os = self._resolve_link(new_path)
        if not os.path.lexists(old_os):
            raise NotFound(f"no such file or directory: '{old_path}'")
        new_folder = os.path.dirname(new_os)
        if not os.path.isdir(new_folder):
            raise NotFound(f"no such directory: '{new_path.rpartition('/')[0]}'")
        if (new_os + os.sep).startswith(old_os + os.sep):
            raise InvalidPath(f"cannot move '{old_path}' into itself")
        checkpoints = self._checkpoint_files(old_os)
        with self._locked(os.path.dirname(old_os)):
            self._check(old_os, old_path, if_match)
            if os.path.lexists(new_os):
                raise AlreadyExists(f"'{new_path}' already exists")
            try:
                os.rename(old_os, new_os)
            except OSError as exc:
                raise os_error(exc, new_path) from None
        if checkpoints:
            target_dir = os.path.join(new_folder, CHECKPOINT_DIR)
            os.makedirs(target_dir, exist_ok=True)
            for checkpoint_id, cp_path in checkpoints:
                os.replace(cp_path, self._checkpoint_path(new_os, checkpoint_id))
        self._fsync_dir(os.path.dirname(old_os))
        self._fsync_dir(new_folder)
        return self.stat(new_path)

    # -- checkpoints -------------------------------------------------------------------
    @staticmethod
    def _checkpoint_path(os_path: str, checkpoint_id: str) -> str:
        """Jupyter's name for the single checkpoint, `stem-checkpoint.ext`; `stem-checkpoint-<id>.ext`
        for the time-stamped ones."""
        folder, name = os.path.split(os_path)
        stem, ext = os.path.splitext(name)
        suffix = "" if checkpoint_id == SINGLE_CHECKPOINT else f"-{checkpoint_id}"
        return os.path.join(folder, CHECKPOINT_DIR, f"{stem}-checkpoint{suffix}{ext}")

    def _checkpoint_files(self, os_path: str) -> list[tuple[str, str]]:
        """(id, OS path) of the checkpoints of the file at `os_path`, oldest first."""
        folder, name = os.path.split(os_path)
        stem, ext = os.path.splitext(name)
        prefix, cp_dir = f"{stem}-checkpoint-", os.path.join(folder, CHECKPOINT_DIR)
        try:
            names = os.listdir(cp_dir)
        except OSError:
            return []
        found = []
        if f"{stem}-checkpoint{ext}" in names:
            found.append((SINGLE_CHECKPOINT, self._checkpoint_path(os_path, SINGLE_CHECKPOINT)))
        for cp_name in names:
            if cp_name.startswith(prefix) and cp_name.endswith(ext):
                checkpoint_id = cp_name[len(prefix) : len(cp_name) - len(ext)]
                if checkpoint_id != SINGLE_CHECKPOINT and _CHECKPOINT_ID.fullmatch(checkpoint_id):
                    found.append((checkpoint_id, os.path.join(cp_dir, cp_name)))
        return sorted(found)

    def _file(self, path: str) -> str:
        os_path, info = self._stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise InvalidPath(f"'{path}' is a directory; only files have checkpoints")
        return os_path

    def _checkpoint(self, checkpoint_id: str, cp_path: str) -> Checkpoint:
        return Checkpoint(id=checkpoint_id, last_modified=_time(os.stat(cp_path).st_mtime))

    def create_checkpoint(self, path: str, *, single: bool = False) -> Checkpoint:
        """A copy of the file's bytes with its mode, as Jupyter's checkpoints keep it."""
        os_path = self._file(path)
        mode = _mode_of(os_path)
        data = self.read(path)
        os.makedirs(os.path.join(os.path.dirname(os_path), CHECKPOINT_DIR), exist_ok=True)
        existing = {checkpoint_id for checkpoint_id, _ in self._checkpoint_files(os_path)}
        stamp = time.time_ns()
        while f"{stamp:020d}" in existing:
            stamp += 1
        checkpoint_id = SINGLE_CHECKPOINT if single else f"{stamp:020d}"
        cp_path = self._checkpoint_path(os_path, checkpoint_id)
        self._atomic_write(cp_path, path, data, mode=mode)
        return self._checkpoint(checkpoint_id, cp_path)

    def list_checkpoints(self, path: str) -> list[Checkpoint]:
        os_path = self._file(path)
        return [self._checkpoint(cid, cp_path) for cid, cp_path in self._checkpoint_files(os_path)]

    def _checkpoint_file(self, path: str, checkpoint_id: str) -> tuple[str, str]:
        os_path = self._file(path)
        cp_path = self._checkpoint_path(os_path, checkpoint_id)
        if not _CHECKPOINT_ID.fullmatch(checkpoint_id) or not os.path.isfile(cp_path):
            raise NotFound(f"no checkpoint '{checkpoint_id}' for '{path}'")
        return os_path, cp_path

    def restore_checkpoint(self, path: str, checkpoint_id: str) -> Entry:
        os_path, cp_path = self._checkpoint_file(path, checkpoint_id)
        with open(cp_path, "rb") as handle:
            data = handle.read()
        return self._atomic_write(os_path, path, data)[0]

    def delete_checkpoint(self, path: str, checkpoint_id: str) -> None:
        _, cp_path = self._checkpoint_file(path, checkpoint_id)
        try:
            os.unlink(cp_path)
        except FileNotFoundError:
            raise NotFound(f"no checkpoint '{checkpoint_id}' for '{path}'") from None

    def describe(self) -> str:
        return self.root
