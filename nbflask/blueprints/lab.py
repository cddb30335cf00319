"""JupyterLab's pages: `/lab`, `/lab/tree/<path>`, `/lab/workspaces/<name>[/tree/<path>]`,
and `/doc/tree/<path>` (one document, no side panels)."""

from __future__ import annotations

import posixpath

from flask import Blueprint, Response

from .pages import render_page

bp = Blueprint("lab", __name__)


def lab_page(path: str = "", workspace: str = "default", mode: str = "multiple-document") -> Response:
    title = posixpath.basename(path.rstrip("/")) or "JupyterLab"
    return render_page("lab", title, tree_path=path.strip("/"), workspace=workspace, mode=mode)


@bp.get("/lab")
def lab() -> Response:
    return lab_page()


@bp.get("/lab/tree", defaults={"path": ""})
@bp.get("/lab/tree/<path:path>")
def lab_tree(path: str) -> Response:
    return lab_page(path)


@bp.get("/lab/workspaces/<name>", defaults={"path": ""})
@bp.get("/lab/workspaces/<name>/tree/<path:path>")
def lab_workspace(name: str, path: str) -> Response:
    return lab_page(path, workspace=name)


@bp.get("/doc/tree/<path:path>")
def doc_tree(path: str) -> Response:
    return lab_page(path, mode="single-document")
