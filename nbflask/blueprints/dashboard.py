"""Server-rendered pages: the dashboard (`/tree/`) and the notebook page."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, url_for

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def home() -> Response:
    return redirect(url_for("dashboard.tree"))


@bp.get("/tree/", defaults={"path": ""})
@bp.get("/tree/<path:path>")
def tree(path: str) -> str:
    return render_template("tree.html", path=path.strip("/"))
