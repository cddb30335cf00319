"""Notebook 7's pages: the file browser `/tree[/<dir>]`, `/notebooks/<path>`, `/edit/<path>`
and `/consoles/<path>`. As in Notebook 7, `/tree/<file>` opens the file where it belongs
(a notebook in `/notebooks/`, anything else raw from `/files/`), and `/notebooks/<dir>`
goes back to the tree.
"""

from __future__ import annotations

import posixpath
from urllib.parse import quote

from flask import Blueprint, Response, abort, redirect, request

from ..errors import store_status
from ..stores.base import NotFound, StoreError
from .contents import contents
from .pages import render_page

bp = Blueprint("notebook", __name__)


def _kind(path: str) -> str | None:
    """'directory', 'notebook' or 'file' for an existing path, None if there is nothing.
    A store that fails otherwise answers with our error page, not the API's JSON."""
    try:
        return contents().get(path, content=False).model["type"]
    except NotFound:
        return None
    except StoreError as error:
        abort(store_status(error), error.message)


def _to(prefix: str, path: str) -> Response:
    return redirect(f"{request.script_root}/{prefix}/{quote(path)}")


def _title(path: str, fallback: str) -> str:
    return posixpath.basename(path.rstrip("/")) or fallback


@bp.get("/tree", defaults={"path": ""})
@bp.get("/tree/<path:path>")
def tree(path: str) -> Response:
    path = path.strip("/")
    kind = _kind(path)
    if kind is None:
        abort(404, f"No such directory: {path}")
    if kind == "notebook":
        return _to("notebooks", path)
    if kind == "file":
        return _to("files", path)
    return render_page("notebook", _title(path, "Home"), notebook_page="tree", tree_path=path)


@bp.get("/notebooks/<path:path>")
def notebooks(path: str) -> Response:
    path = path.strip("/")
    if _kind(path) == "directory":
        return _to("tree", path)
    title = _title(path, "Notebook")
    return render_page("notebook", title, notebook_page="notebooks", data_notebook="notebooks")


@bp.get("/edit/<path:path>")
def edit(path: str) -> Response:
    return render_page("notebook", _title(path, "Edit"), notebook_page="edit", data_notebook="edit")


@bp.get("/consoles", defaults={"path": ""})
@bp.get("/consoles/<path:path>")
def consoles(path: str) -> Response:
    return render_page("notebook", _title(path, "Console"), notebook_page="consoles")
