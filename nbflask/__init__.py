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
    try:
        return build_app(None)
    except ConfigError as exc:
        # Started by `flask --app nbflask run`: one line and exit 2, as `nbflask run` does.
        import sys

        print(f"nbflask: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
