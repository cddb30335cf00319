"""Notebook export ("Save and Export Notebook As...") through nbconvert, when installed.

nbconvert is the optional `export` extra: it is large and pulls in HTML and LaTeX tooling a
server without exports does not need. Without it the format list is empty (the front-ends'
export menu then offers nothing) and an export request says how to get it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

import nbformat

from ..api_error import APIError
from ..blocking import run_blocking

MISSING = "exporting notebooks needs nbconvert, which is not installed: pip install 'nbflask[export]'"


def _nbconvert() -> Any:
    try:
        import nbconvert
    except ImportError:
        return None
    return nbconvert


@dataclass(frozen=True)
class Exported:
    body: bytes
    mimetype: str
    filename: str


def formats() -> dict[str, dict[str, str]]:
    """`{format: {"output_mimetype": ...}}` for every installed exporter, {} without nbconvert."""
    nbconvert = _nbconvert()
    if nbconvert is None:
        return {}
    found = {}
    for name in nbconvert.exporters.get_export_names():
        try:
            mimetype = nbconvert.exporters.get_exporter(name).output_mimetype
        except Exception:  # noqa: BLE001 - a broken third-party exporter must not hide the others
            continue
        found[name] = {"output_mimetype": mimetype}
    return found


def export(content: dict[str, Any], path: str, format: str) -> Exported:
    """Convert a notebook (its JSON content) to `format`; APIError 400/500/501 as fits."""
    nbconvert = _nbconvert()
    if nbconvert is None:
        raise APIError(501, MISSING, "nbconvert missing")
    try:
        exporter = nbconvert.exporters.get_exporter(format)()
    except nbconvert.exporters.ExporterNameError:
        message = f"no exporter named {format!r}: see /api/nbconvert for the formats"
        raise APIError(400, message, "bad format") from None
    stem = posixpath.splitext(posixpath.basename(path))[0] or "notebook"
    notebook = nbformat.from_dict(content)
    try:
        output, resources = run_blocking(exporter.from_notebook_node, notebook, {"metadata": {"name": stem}})
    except Exception as exc:  # noqa: BLE001 - pandoc or LaTeX missing, a bad template: say which
        raise APIError(500, f"export of {path} to {format} failed: {exc}", "export failed") from None
    body = output.encode("utf-8") if isinstance(output, str) else output
    extension = resources.get("output_extension") or ""
    return Exported(body, exporter.output_mimetype or "application/octet-stream", stem + extension)
