"""What every request meets before its view: a UTF-8 path, a body within max_body_size
however it is framed, and Jupyter's redirect of URLs that end in a slash."""

from __future__ import annotations

from flask import Request, Response, redirect, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

from . import security
from .errors import json_error

# Routes that answer with their trailing slash, as Jupyter's do: the contents root listing.
KEEP_SLASH = frozenset({"/api/contents/"})


class _CappedStream(LimitedStream):
    """A chunked body read up to max_body_size, then 413 if more follows.

    Werkzeug stops reading a chunked body at the limit and hands the view a truncated body
    (which then fails to parse as a confusing 400); this looks one byte further instead.
    """

    def on_exhausted(self) -> None:
        if self._stream.read(1):
            raise RequestEntityTooLarge()

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted:
            self.on_exhausted()
        return data


class BoundedRequest(Request):
    """Flask's request, with the body limit enforced on chunked bodies too."""

    @cached_property
    def stream(self):  # noqa: ANN201 - a binary file-like object, as in Werkzeug
        limit = self.max_content_length
        if self.content_length is None and limit is not None and "wsgi.input_terminated" in self.environ:
            return _CappedStream(self.environ["wsgi.input"], limit, is_max=True)
        return super().stream


def utf8_path_problem() -> Response | None:
    """400 for a path that is not UTF-8 (Werkzeug would quietly turn it into U+FFFD)."""
    raw = request.environ.get("PATH_INFO", "")
    try:
        raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return json_error(400, f"Invalid unicode in path: {raw.encode('latin-1', 'replace')!r}")
    return None


def trailing_slash_redirect() -> Response | None:
    """`/api/kernels/` to `/api/kernels`, as Jupyter redirects a URL that ends in a slash."""
    if request.path in KEEP_SLASH:
        return None
    target = security.without_trailing_slash(request.script_root, request.path, request.query_string)
    return redirect(target, 302) if target else None
