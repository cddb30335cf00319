"""What a static file of the front-ends is served as: its type, version tag, cache lifetime
and gzip form. Free of HTTP; `blueprints/assets.py` turns it into responses.

Bundle names carry a content hash (`jlab_core.8cf27f880e10219d.js`): such a file never
changes under its name, so browsers may keep it for a year without asking again. Others
(`style.js`, a theme's `index.css`) are revalidated each load with a cheap 304. gzip forms
are made once per file version (on gevent's thread pool: zlib releases the GIL) and kept
in memory, bounded; already-compressed formats (woff2, png) are sent as they are.
"""

from __future__ import annotations

import gzip
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ..blocking import run_blocking
from ..security import file_inside

TYPES = {
    ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".json": "application/json",
    ".map": "application/json", ".html": "text/html", ".svg": "image/svg+xml", ".txt": "text/plain",
    ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject", ".wasm": "application/wasm", ".png": "image/png",
    ".gif": "image/gif", ".jpg": "image/jpeg", ".ico": "image/x-icon", ".md": "text/markdown",
}
TEXT_TYPES = {"text/javascript", "text/css", "application/json", "text/html", "image/svg+xml",
              "text/plain", "font/ttf", "font/otf", "application/vnd.ms-fontobject", "application/wasm",
              "text/markdown"}
CHARSET_TYPES = {"text/javascript", "text/css", "text/html", "text/plain", "text/markdown"}
MIN_COMPRESS = 1024
HASHED_NAME = re.compile(r"(^|[._-])[0-9a-f]{16,}([._-]|$)")


@dataclass(frozen=True)
class StaticFile:
    path: Path
    size: int
    mtime_ns: int

    @property
    def mimetype(self) -> str:
        return TYPES.get(self.path.suffix.lower(), "application/octet-stream")

    @property
    def content_type(self) -> str:
        kind = self.mimetype
        return f"{kind}; charset=utf-8" if kind in CHARSET_TYPES else kind

    @property
    def immutable(self) -> bool:
        """True for content-hashed bundle names, which never change."""
        return bool(HASHED_NAME.search(self.path.name))

    @property
    def compressible(self) -> bool:
        return self.mimetype in TEXT_TYPES and self.size >= MIN_COMPRESS

    def etag(self, encoding: str | None = None) -> str:
        tag = f"{self.mtime_ns:x}-{self.size:x}"
        return f"{tag}-{encoding}" if encoding else tag


def find(root: Path, name: str) -> StaticFile | None:
    """The file `name` below `root`, or None: also for anything that would leave `root`,
    through `..` or a symlink, or is hidden (`security.file_inside`)."""
    path = file_inside(root, name)
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return None
    return StaticFile(path, info.st_size, info.st_mtime_ns)


class GzipCache:
    """gzip bytes of static files by (path, version), least recently used dropped first."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[Path, int, int], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, file: StaticFile) -> bytes:
        key = (file.path, file.mtime_ns, file.size)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        data = run_blocking(_gzip_file, file.path)
        with self._lock:
            if key not in self._entries:
                self._entries[key] = data
                self._bytes += len(data)
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped)
        return data


def _gzip_file(path: Path) -> bytes:
    return gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
