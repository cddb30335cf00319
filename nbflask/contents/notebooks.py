"""Notebook documents: bytes <-> nbformat v4 nodes, with upgrade, validation and repair rules.

Reading upgrades every notebook to v4. Saving refuses what is not a notebook at all (400,
nothing written) but keeps a notebook that merely fails schema validation, with the
validation message, because losing a user's work is worse than storing an odd document.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4.rwbase import split_lines, strip_transient

from ..stores.base import BadContent

log = logging.getLogger(__name__)

CURRENT = nbformat.current_nbformat


def validation_message(error: Exception | None) -> str | None:
    """The one-paragraph reason a notebook failed its schema, as Jupyter reports it."""
    if error is None:
        return None
    detail = getattr(error, "message", None) or str(error)
    return f"Notebook validation failed: {detail}"


def read(data: bytes, path: str) -> tuple[NotebookNode, str | None]:
    """Parse stored bytes as a v4 notebook; returns it and the validation message, if any."""
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
        return nbformat.from_dict(raw), validation_message(exc)
    return nb, validation_message(captured.get("ValidationError"))


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def from_model(content: Any) -> NotebookNode:
    """The notebook a client sent in a save, upgraded to v4; BadContent if it is none at all."""
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
    nb = nbformat.from_dict(content)
    if version < CURRENT:
        try:
            nb = nbformat.convert(nb, CURRENT)
        except Exception as exc:  # noqa: BLE001 - the converters assume well-formed input
            raise BadContent(f"Unreadable Notebook: cannot upgrade from v{version}: {exc}") from None
    return nb


def dumps(nb: NotebookNode) -> tuple[bytes, str | None]:
    """Serialise for storage exactly as nbformat writes v4 (sorted keys, indent 1, lines
    split), plus the validation message. Consumes `nb`: it is changed in place instead of
    deep-copied as nbformat.writes does, which would hold a second copy of a large notebook.

    A notebook nbformat's helpers trip over (an invalid shape) is stored as plain sorted JSON:
    the user's work is kept and the message says what is wrong.
    """
    message = None
    try:
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - beyond ValidationError, odd shapes crash it
        message = validation_message(exc)
    try:
        split_lines(nb)
        strip_transient(nb)
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        log.warning("saving a notebook nbformat cannot normalise, as plain JSON: %s", exc)
        message = message or validation_message(exc)
    text = json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False, separators=(",", ": "))
    text += "\n"  # in place: CPython grows a string nobody else holds
    try:
        return text.encode("utf-8"), message
    except UnicodeEncodeError as exc:
        raise BadContent(f"Unreadable Notebook: text that is not valid Unicode ({exc.reason})") from None


def new() -> NotebookNode:
    """An empty v4 notebook, for POST (new untitled) and PUT without content."""
    return nbformat.v4.new_notebook()
