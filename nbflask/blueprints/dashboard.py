"""Server-rendered pages: the dashboard (`/tree`) and a read-only notebook view.

The notebook view shows sources and outputs as text and images only: it never renders a
notebook's HTML or JavaScript, so an untrusted notebook cannot script this origin. Editing and
running happen in a Jupyter front end (JupyterLab, VS Code) connected to this server's API.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, redirect, render_template, url_for

from ..stores.base import StoreError
from .contents import contents

bp = Blueprint("dashboard", __name__)

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")


@bp.app_template_filter("plain")
def plain(text: str | list[str]) -> str:
    """Notebook text (a string or a list of lines) without terminal colour codes."""
    return ANSI_ESCAPE.sub("", "".join(text) if isinstance(text, list) else text)


@bp.get("/")
def home() -> Response:
    return redirect(url_for("dashboard.tree"))


@bp.get("/tree", defaults={"path": ""})
@bp.get("/tree/<path:path>")
def tree(path: str) -> str:
    return render_template("tree.html", path=path.strip("/"))


@bp.get("/notebooks/<path:path>")
def notebook(path: str) -> str:
    try:
        model = contents().get(path, type="notebook").model
    except StoreError as error:
        abort(error.status, error.message)
    return render_template("notebook.html", model=model, image_types=IMAGE_TYPES)
