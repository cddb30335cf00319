"""Compact ASCII JSON of a large value, made in pieces a pool thread can be interrupted between.

`json.dumps` of a large notebook model or folder listing is one C call that holds the GIL
from start to end (about 10 ms a MB), in whatever thread it runs, so moving it off the
gevent loop alone would not let the loop run meanwhile. Made item by item (the cells of a
notebook, the entries of a folder, slices of a long string), each call is short and the
loop gets the GIL back between them. The text is exactly `json.dumps(value,
separators=(",", ":"), ensure_ascii=True)`; being ASCII, its length is its length in bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

#: How deep containers are split: model -> notebook -> cells -> each cell in one call.
SPLIT_DEPTH = 3
#: Characters of a long string escaped per call (any cut is safe: ensure_ascii escapes each
#: code point on its own).
STRING_PIECE = 256 * 1024

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def compact(value: Any) -> str:
    """The text in one C call: for values too small to be worth the pieces."""
    return _dumps(value)


def compact_chunks(value: Any, chunk: int) -> list[str]:
    """The text in consecutive chunks of about `chunk` characters (at least one chunk)."""
    chunks: list[str] = []
    pending: list[str] = []
    size = 0
    for piece in _pieces(value, SPLIT_DEPTH):
        pending.append(piece)
        size += len(piece)
        if size >= chunk:
            chunks.append("".join(pending))
            pending, size = [], 0
    if pending or not chunks:
        chunks.append("".join(pending))
    return chunks


def _pieces(value: Any, depth: int) -> Iterator[str]:
    if depth and isinstance(value, dict) and all(isinstance(key, str) for key in value):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield ("," if index else "") + _dumps(key) + ":"
            yield from _pieces(item, depth - 1)
        yield "}"
    elif depth and isinstance(value, (list, tuple)):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ","
            yield from _pieces(item, depth - 1)
        yield "]"
    elif isinstance(value, str) and len(value) > STRING_PIECE:
        yield '"'
        for start in range(0, len(value), STRING_PIECE):
            yield _dumps(value[start : start + STRING_PIECE])[1:-1]
        yield '"'
    else:
        yield _dumps(value)
