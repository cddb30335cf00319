"""Schema validation of notebooks, remembering what passed so a save validates only new cells.

nbformat's validator (fastjsonschema) is the largest cost of saving and loading a large
notebook: 190 ms of a 5 MB, 2,000-cell one, more than parsing and serialising it together.
Yet an autosave changes a cell or two, and a notebook is mostly reloaded as it was saved.
So this remembers, by hash, the cells found valid (by their stored text and the schema
version) and the documents found valid (by their stored bytes), and validates only the rest,
with nbformat's own validator. A notebook is valid exactly when its top level is, each of
its cells is, and its cell ids are unique; a failure is always reported from a validation of
the whole notebook, so the message is nbformat's own.

What is remembered is advisory only: a hash collision could at worst skip a "Notebook
validation failed" message, never change or lose content, and never trust anything (trust
is a signature over the whole notebook, never remembered).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import nbformat
from nbformat import ValidationError
from nbformat.reader import get_version

CELLS_REMEMBERED = 50_000  # about 3 MB of hashes: every cell of 25 notebooks of 2,000
DOCUMENTS_REMEMBERED = 1_000


def message_of(error: Exception | None) -> str | None:
    """The one-paragraph reason a notebook failed its schema, as Jupyter reports it."""
    if error is None:
        return None
    detail = getattr(error, "message", None) or str(error)
    return f"Notebook validation failed: {detail}"


def needs_repair(nb: Any) -> bool:
    """Whether nbformat's validate may change the notebook: it gives cells of a v4.5+
    notebook a missing id, and a duplicate one a new id. Such a notebook (or one with ids
    that are not strings) is validated whole."""
    if get_version(nb) < (4, 5):
        return False
    ids = [cell.get("id") for cell in nb["cells"]]
    return not all(isinstance(cell_id, str) for cell_id in ids) or len(set(ids)) != len(ids)


class Validity:
    """Validates v4 notebooks with nbformat, skipping the cells and documents seen valid.

    Bounded: each memory is forgotten whole when full (the next saves validate everything
    once more). Shared by the greenlets and threads of a worker: a set's add and lookup are
    atomic in CPython.
    """

    def __init__(self, cells: int = CELLS_REMEMBERED, documents: int = DOCUMENTS_REMEMBERED) -> None:
        self._cells: set[int] = set()
        self._documents: set[int] = set()
        self._cell_limit, self._document_limit = cells, documents

    @staticmethod
    def whole(nb: Any) -> str | None:
        """Validate a whole notebook; its message if invalid. Repairs ids as nbformat does."""
        try:
            nbformat.validate(nb)
        except Exception as exc:  # noqa: BLE001 - beyond ValidationError, odd shapes crash it
            return message_of(exc)
        return None

    def saved(self, nb: Any, cell_texts: Sequence[str]) -> str | None:
        """Validate a notebook about to be stored, given each cell's stored text.

        The caller has checked that `needs_repair(nb)` is false: nothing here changes `nb`.
        """
        version = get_version(nb)
        keys = [hash((version, text)) for text in cell_texts]
        unseen = [cell for cell, key in zip(nb["cells"], keys, strict=True) if key not in self._cells]
        try:
            nbformat.validate({**nb, "cells": unseen})
        except Exception:  # noqa: BLE001 - the whole notebook says why, in nbformat's words
            return self.whole(nb)
        _remember(self._cells, keys, self._cell_limit)
        return None

    def read(self, nb: Any, key: int) -> str | None:
        """Validate a notebook just read from stored bytes whose hash is `key`. Raises what
        nbformat raises beyond a ValidationError, for the caller's own fallback."""
        if key in self._documents:
            return None
        repaired = needs_repair(nb)  # new ids each time it is read: not remembered
        try:
            nbformat.validate(nb)
        except ValidationError as exc:
            return message_of(exc)
        if not repaired:
            _remember(self._documents, [key], self._document_limit)
        return None

    def stored(self, key: int) -> None:
        """The bytes whose hash is `key` were just saved from a valid notebook: reading them
        back gives the same cells, so they are valid too."""
        _remember(self._documents, [key], self._document_limit)


def _remember(memory: set[int], keys: Sequence[int], limit: int) -> None:
    if len(memory) + len(keys) > limit:
        memory.clear()
    memory.update(keys)
