"""The front-end pages' common parts: `/` to `ui.default_url`, and rendering one page.

A page is our small template (`templates/frontend.html`) with the page config of
`nbflask.frontend.pageconfig` and the scripts the shipped page names. Pages are revalidated
on every load (ETag, 304), so a warm load costs one small round trip.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, render_template, request

from ..frontend.pageconfig import App, page_config
from ..state import state

bp = Blueprint("pages", __name__)


def base_url() -> str:
    """The server's prefix as the browser sees it (a proxy's X-Forwarded-Prefix included)."""
    return request.script_root + "/"


@bp.get("/")
def home() -> Response:
    return redirect(request.script_root + state().settings.ui.default_url)


def render_page(
    app: App, title: str, *, data_notebook: str | None = None, **options: Any
) -> Response:
    """One front-end page; `options` are page-config values (tree_path, workspace, ...)."""
    server = state()
    frontends = server.frontends
    frontend = frontends.assets.lab if app == "lab" else frontends.assets.notebook
    config = page_config(
        app, frontends.assets, frontends.extensions, base_url(),
        allow_hidden=server.settings.store.allow_hidden, terminals=server.settings.terminals.enabled,
        expose_app=server.settings.ui.expose_app_in_browser, **options,
    )
    html = render_template(
        "frontend.html",
        title=title,
        page_config=config,
        scripts=frontend.scripts,
        data_notebook=data_notebook,
    )
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-cache"
    response.add_etag()
    return response.make_conditional(request)
