"""Helpers for kernel tests: an app whose kernel host is stopped at the end of the test,
optionally served over real HTTP by a threaded werkzeug server in this process."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from live import TOKEN
from werkzeug.serving import make_server

from nbflask.runtime import pid_alive


def close_app(app) -> None:
    app.extensions["nbflask"].close()


@contextmanager
def kernel_client(make_app, config: dict[str, Any] | None = None) -> Iterator[FlaskClient]:
    """A token-authenticated test client of a new app; its kernel host is stopped at the end."""
    app = make_app(config)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    try:
        yield client
    finally:
        close_app(app)


class ThreadedServer:
    """The app on a free loopback port, served by threads like `flask run` (no gevent)."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


def install_spec(folder: Path, name: str, argv: list[str], **extra: Any) -> Path:
    """Write kernelspec `name` under `folder`/kernels (a JUPYTER_PATH entry)."""
    spec_dir = folder / "kernels" / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": name,
                                                      "language": "python", **extra}))
    return spec_dir


def wait_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


PYTHON = sys.executable
