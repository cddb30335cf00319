"""Notebook documents: bytes <-> nbformat v4 nodes, with upgrade, validation and repair rules.

Reading upgrades every notebook to v4. Saving refuses what is not a notebook at all (400,
nothing written) but keeps a notebook that merely fails schema validation, with the
validation message, because losing a user's work is worse than storing an odd document.

The bytes stored are exactly nbformat's (sorted keys, indent 1, lines split), and what is
read is exactly what nbformat.reads gives; `tests/contents/test_notebook_codec.py` holds both to it.
The work is cut where nbformat repeats it for every save of a large notebook (validation:
see validation.py) or does it in pure Python where the standard library has C (dicts become
NotebookNodes as JSON is parsed, not in a second walk).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4.rwbase import rejoin_lines, split_lines, strip_transient

from ..stores.base import BadContent
from .validation import Validity, message_of, needs_repair

log = logging.getLogger(__name__)

CURRENT = nbformat.current_nbformat
Node = NotebookNode  # what a save's body is parsed into (from_model then takes it as it is)
CELLS_LINE = '\n "cells": []'  # the key at the top level: no string holds a raw newline


class Notebooks:
    """Reads and writes notebook documents; one per contents service, as it remembers which
    cells and documents were valid (validation.py)."""

    def __init__(self, validity: Validity | None = None) -> None:
        self.validity = validity or Validity()

    def read(self, data: bytes, path: str) -> tuple[NotebookNode, str | None]:
        """Parse stored bytes as a v4 notebook; returns it and the validation message, if any."""
        nb = _parse_v4(data)
        if nb is not None:
            try:
                rejoin_lines(nb)
                strip_transient(nb)
                return nb, self.validity.read(nb, hash(data))
            except Exception:  # noqa: BLE001 - an odd shape: nbformat's own reader decides
                log.debug("reading an oddly shaped notebook the slow way", exc_info=True)
        return _read(data, path)

    def dumps(self, nb: NotebookNode) -> tuple[bytes, str | None]:
        """Serialise for storage exactly as nbformat writes v4, plus the validation message.
        Consumes `nb`: it is changed in place instead of deep-copied as nbformat.writes does,
        which would hold a second copy of a large notebook.

        A notebook nbformat's helpers trip over (an invalid shape) is stored as plain sorted JSON:
        the user's work is kept and the message says what is wrong.
        """
        by_cell = _cells_of_v4(nb) and not needs_repair(nb)
        message = None if by_cell else Validity.whole(nb)
        try:
            split_lines(nb)
            strip_transient(nb)
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            log.warning("saving a notebook nbformat cannot normalise, as plain JSON: %s", exc)
            message = (Validity.whole(nb) if by_cell else message) or message_of(exc)
            by_cell = False
        if by_cell:
            text, cell_texts = _serialise_by_cell(nb)
            message = self.validity.saved(nb, cell_texts)
        else:
            text = _serialise(nb)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadContent(f"Unreadable Notebook: text that is not valid Unicode ({exc.reason})") from None
        if by_cell and message is None:
            self.validity.stored(hash(data))
        return data, message


def _parse_v4(data: bytes) -> NotebookNode | None:
    """The stored JSON as NotebookNodes if it is a v4 notebook with a list of cells (what
    nbformat's reader would convert into the same nodes), else None."""
    try:
        nb = json.loads(data, object_hook=NotebookNode)
    except ValueError:
        return None
    return nb if _cells_of_v4(nb) else None


def _cells_of_v4(nb: Any) -> bool:
    version = nb.get("nbformat") if isinstance(nb, dict) else None
    return (
        version == CURRENT
        and type(version) is int
        and isinstance(nb.get("nbformat_minor"), int)
        and isinstance(nb.get("cells"), list)
        and all(type(cell) is NotebookNode for cell in nb["cells"])
    )


def _read(data: bytes, path: str) -> tuple[NotebookNode, str | None]:
    """nbformat's reader, for every notebook that is not plain v4."""
    captured: dict[str, Exception] = {}
    try:
        # json.loads takes UTF-8 bytes: no decoded copy of a large notebook.
        nb = nbformat.reads(data, as_version=CURRENT, capture_validation_error=captured)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for bad documents
        # A v4 document nbformat's reader trips over (a cell that is not an object...) is
        # still served as stored, with the reason, so the user can repair it.
        raw = _json_object(data)
        if raw is None or raw.get("nbformat") != CURRENT:
            raise BadContent(f"Unreadable Notebook: {path} {exc}", "bad format") from None
        return nbformat.from_dict(raw), message_of(exc)
    return nb, message_of(captured.get("ValidationError"))


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _serialise(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False, separators=(",", ": "))


def _serialise_by_cell(nb: NotebookNode) -> tuple[str, list[str]]:
    """nbformat's text of the notebook, made cell by cell (each cell's text is the key of its
    validation, validation.py): the same bytes, as a cell sits two levels deep and JSON
    text holds no raw newline but between its lines."""
    cell_texts = [_serialise(cell) for cell in nb["cells"]]
    text = _serialise({**nb, "cells": []})
    if cell_texts:
        cells = ",\n".join(cell_texts).replace("\n", "\n  ")
        text = text.replace(CELLS_LINE, f'{CELLS_LINE[:-1]}\n  {cells}\n ]', 1)
    return text + "\n", cell_texts


def from_model(content: Any) -> NotebookNode:
    """The notebook a client sent in a save, upgraded to v4; BadContent if it is none at all.

    Content parsed into Nodes (the request's body, every JSON object one) is used as it is,
    not converted in a second walk."""
    if not isinstance(content, dict):
        found = type(content).__name__
        raise BadContent(f"Unreadable Notebook: content must be a JSON object, found {found}")
    version = content.get("nbformat")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= CURRENT:
        raise BadContent(
            f"Unreadable Notebook: 'nbformat' must be an integer from 1 to {CURRENT}, found {version!r}"
        )
    cells_key = "cells" if version >= 4 else "worksheets"
    if not isinstance(content.get(cells_key), list):
        raise BadContent(f"Unreadable Notebook: '{cells_key}' must be a list")
    nb = content if isinstance(content, Node) else nbformat.from_dict(content)
    if version < CURRENT:
        try:
            nb = nbformat.convert(nb, CURRENT)
        except Exception as exc:  # noqa: BLE001 - the converters assume well-formed input
            raise BadContent(f"Unreadable Notebook: cannot upgrade from v{version}: {exc}") from None
    return nb


def new() -> NotebookNode:
    """An empty v4 notebook, for POST (new untitled) and PUT without content."""
    return nbformat.v4.new_notebook()
