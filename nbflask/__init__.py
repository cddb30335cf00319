"""nbflask: a Jupyter-compatible notebook server on Flask, gevent and ZeroMQ.

The package root stays import-light on purpose: `nbflask run` must monkey-patch with gevent
before Flask, ssl or zmq are imported, and `flask --app nbflask run` only needs `create_app`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import os

    from flask import Flask

    from .config import Settings

__version__ = "0.1.0"


def create_app(config: str | os.PathLike[str] | Mapping[str, Any] | Settings | None = None) -> Flask:
    """The Flask factory: a YAML path, a dict shaped like the YAML, a Settings, or None.

    With None the file named by NBFLASK_CONFIG is read, else the defaults apply, so
    `flask --app nbflask run` works out of the box.
    """
    from .app import build_app
    from .config import ConfigError

    if config is not None:
        return build_app(config)
    import sys

    # Started by `flask --app nbflask run` or a WSGI server: they print neither our errors
    # nor our token, so say both here, one line each, as `nbflask run` does.
    try:
        app = build_app(None)
    except ConfigError as exc:
        print(f"nbflask: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    settings = app.extensions["nbflask"].settings
    if settings.auth.token == "auto":
        token = app.extensions["nbflask"].token
        print(f"nbflask: log in with the token {token} (add ?token={token} to the URL)", file=sys.stderr)
    return app
