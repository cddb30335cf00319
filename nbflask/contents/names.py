"""Names the server picks: `Untitled.ipynb`, `Untitled1.ipynb`, `Untitled Folder 1`,
`name-Copy1.ipynb`, following Jupyter so users and clients see the names they expect."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

UNTITLED_NOTEBOOK = "Untitled"
UNTITLED_FILE = "untitled"
UNTITLED_DIRECTORY = "Untitled Folder"

_COPY_SUFFIX = re.compile(r"-Copy\d*\.")


def split_name(name: str) -> tuple[str, str]:
    """Base and suffix; the suffix is everything after the first dot (`.tar.gz`), except
    that notebooks keep only `.ipynb` so `a.b.ipynb` copies to `a.b-Copy1.ipynb`."""
    if name.endswith(".ipynb"):
        return name[: -len(".ipynb")], ".ipynb"
    base, dot, suffix = name.partition(".")
    return base, dot + suffix


def unique_name(name: str, taken: Callable[[str], bool], insert: str = "") -> str:
    """`name` itself if free, else `base{insert}1{suffix}`, `base{insert}2{suffix}`, ..."""
    base, suffix = split_name(name)
    for number in itertools.count():
        candidate = f"{base}{insert}{number}{suffix}" if number else name
        if not taken(candidate):
            return candidate
    raise AssertionError("unreachable")


def untitled(kind: str, ext: str, taken: Callable[[str], bool]) -> str:
    """The first free untitled name for a new notebook, file or directory."""
    if kind == "directory":
        return unique_name(UNTITLED_DIRECTORY, taken, insert=" ")
    if kind == "notebook":
        return unique_name(UNTITLED_NOTEBOOK + ".ipynb", taken)
    return unique_name(UNTITLED_FILE + ext, taken)


def copy_name(source_name: str, taken: Callable[[str], bool]) -> str:
    """The name of a copy: `a.ipynb` -> `a-Copy1.ipynb`; copying `a-Copy1.ipynb` -> `a-Copy2`."""
    return unique_name(_COPY_SUFFIX.sub(".", source_name), taken, insert="-Copy")
