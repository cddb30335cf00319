"""`/files/<path>`: raw downloads, streamed from the store, sandboxed.

An HTML or SVG file served from the server's own origin could otherwise run scripts with
the user's cookies; the CSP `sandbox` directive gives the document an opaque origin with
scripts off, and `default-src 'none'` lets it load only its own images, styles and media.
The app-wide security headers (blueprints/auth.py) add `nosniff` and `frame-ancestors`.
"""

from __future__ import annotations

import mimetypes
import unicodedata
from urllib.parse import quote

from flask import Blueprint, Response, request
from werkzeug.http import dump_options_header

from .contents import contents

bp = Blueprint("files", __name__)

SANDBOX = (
    "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; "
    "style-src 'self' 'unsafe-inline'; font-src 'self'"
)


def content_type(name: str) -> str:
    if name.endswith(".ipynb"):
        return "application/x-ipynb+json"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def attachment(name: str) -> str:
    """Content-Disposition for any file name: an ASCII fallback plus the RFC 5987 UTF-8 form."""
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    options = {"filename": fallback or "download"}
    if fallback != name:
        options["filename*"] = "UTF-8''" + quote(name, safe="")
    return dump_options_header("attachment", options)


@bp.get("/files/<path:path>")
def download(path: str) -> Response:
    entry, chunks = contents().open_download(path)
    response = Response(chunks, mimetype=content_type(entry.name), direct_passthrough=True)
    response.content_length = entry.size
    if entry.etag is not None:
        response.set_etag(entry.etag)
    response.last_modified = entry.last_modified
    response.headers["Content-Security-Policy"] = SANDBOX
    response.headers["Cache-Control"] = "private, no-cache"
    if request.args.get("download", "0") not in ("", "0", "false"):
        response.headers["Content-Disposition"] = attachment(entry.name)
    return response
