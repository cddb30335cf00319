"""The front-ends' files: bundles under `static/lab/` and `static/notebook/`, themes under
`lab/api/themes/`, federated extensions under `lab/extensions/<name>/static/`, and the
`static/favicons/` the pages swap as a kernel turns busy or idle.

All public (they are the open-source bundles, nothing of the user's), with the right type,
a version ETag answered by 304, a year of caching for content-hashed names, and gzip when
the browser offers it. Which folder holds what is decided in `nbflask.frontend`.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, request, send_file

from ..frontend.staticfiles import GzipCache, StaticFile, find
from ..state import state
from .auth import public

bp = Blueprint("assets", __name__)

IMMUTABLE = "public, max-age=31536000, immutable"
OWN_STATIC = Path(__file__).resolve().parent.parent / "static"
# The icons Notebook 7 and JupyterLab swap in as a kernel turns busy or idle (Jupyter Server
# ships them in its own static folder): ours, in two states.
FAVICONS = {"favicon.ico", "favicon-file.ico", "favicon-notebook.ico", "favicon-terminal.ico"}
BUSY_FAVICONS = {"favicon-busy-1.ico", "favicon-busy-2.ico", "favicon-busy-3.ico"}
REVALIDATE = "public, no-cache"
_gzip = GzipCache()


def serve(file: StaticFile | None) -> Response:
    """One static file as a conditional, possibly gzipped response; 404 if there is none."""
    if file is None:
        abort(404)
    encoding = "gzip" if file.compressible and "gzip" in request.accept_encodings else None
    etag = file.etag(encoding)
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    elif encoding:
        response = Response(_gzip.get(file), content_type=file.content_type)
        response.headers["Content-Encoding"] = encoding
    else:
        response = send_file(file.path, mimetype=file.mimetype, conditional=False, etag=False)
    response.set_etag(etag)
    response.headers["Cache-Control"] = IMMUTABLE if file.immutable else REVALIDATE
    if file.compressible:
        response.vary.add("Accept-Encoding")
    return response


def find_in(folders: list[Path], name: str) -> StaticFile | None:
    return next((file for file in (find(folder, name) for folder in folders) if file is not None), None)


@bp.get("/static/lab/<path:name>")
@public
def lab_static(name: str) -> Response:
    return serve(find(state().frontends.assets.lab.static_dir, name))


@bp.get("/static/notebook/<path:name>")
@public
def notebook_static(name: str) -> Response:
    return serve(find(state().frontends.assets.notebook.static_dir, name))


@bp.get("/static/favicons/<name>")
@public
def favicon(name: str) -> Response:
    if name not in FAVICONS | BUSY_FAVICONS:
        abort(404)
    return serve(find(OWN_STATIC, "favicon-busy.svg" if name in BUSY_FAVICONS else "favicon.svg"))


@bp.get("/lab/api/themes/<path:name>")
@public
def theme(name: str) -> Response:
    return serve(find_in(state().frontends.theme_folders(), name))


@bp.get("/lab/extensions/<path:name>")
@public
def extension_static(name: str) -> Response:
    """`<extension name>/static/<file>`; the name may be scoped (`@scope/name`)."""
    parts = name.split("/")
    scoped = 2 if parts[0].startswith("@") else 1
    extension = state().frontends.extension("/".join(parts[:scoped]))
    rest = parts[scoped:]
    if extension is None or len(rest) < 2 or rest[0] != "static":
        abort(404)
    return serve(find(extension.static_dir, "/".join(rest[1:])))
