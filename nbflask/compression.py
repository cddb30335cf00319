"""gzip for JSON answers, when the client offers it (Jupyter Server compresses too).

JupyterLab loads every plugin's settings schema in one `lab/api/settings` answer of about
150 KB at each page load; gzip makes it about 15 KB. Only whole JSON bodies of 1 KiB or more
without an ETag are compressed: streamed downloads are left alone, and a versioned answer
(a notebook with its ETag) keeps one representation per tag. Static files compress their
own way (`nbflask/frontend/staticfiles.py`).
"""

from __future__ import annotations

import gzip

from flask import Response, request

from .blocking import run_blocking

MIN_SIZE = 1024


def compress_json(response: Response) -> Response:
    """The response gzipped if it is a whole JSON body worth it and the client takes gzip."""
    if (
        response.mimetype != "application/json"
        or response.direct_passthrough
        or response.is_streamed
        or response.status_code < 200
        or response.status_code in (204, 304)
        or "Content-Encoding" in response.headers
        or "ETag" in response.headers
        or "gzip" not in request.accept_encodings
    ):
        return response
    body = response.get_data()
    if len(body) < MIN_SIZE:
        return response
    response.set_data(run_blocking(gzip.compress, body, 5))
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response
