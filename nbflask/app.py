"""Assembles the Flask application for one deployment from its settings."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask, redirect
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Request, Response

from . import __version__, compression, errors, request_rules, runtime, security
from .blueprints import (
    api,
    assets,
    auth,
    configapi,
    contents,
    files,
    kernels,
    kernelspecs,
    lab,
    labapi,
    nbconvert,
    notebook,
    pages,
    probes,
    runs,
    sessions,
    terminals,
)
from .config import ConfigError, Settings, load_settings
from .contents import Contents, Trust
from .contents.recorded import RecordedOutputs
from .frontend.service import open_frontends
from .host_client import HostClient
from .protocol.endpoints import SocketPathTooLong
from .state import EXTENSION, ServerState
from .stores import open_store


def _effective_token(settings: Settings) -> str:
    token = settings.auth.token
    if token == "auto":
        return secrets.token_hex(24)
    return token


def _kernel_host(settings: Settings) -> HostClient:
    try:
        return HostClient(settings)
    except SocketPathTooLong as exc:
        raise ConfigError(f"kernels: {exc}") from None


def _outside_prefix(base_url: str):
    """Answer requests outside base_url: `/` goes to the prefix, the rest is 404."""

    @Request.application
    def app(request: Request) -> Response:
        if request.path == "/":
            return redirect(request.script_root + base_url)
        return Response("Not found: this server lives under " + base_url, status=404)

    return app


def build_app(config: str | os.PathLike[str] | Mapping[str, Any] | Settings | None = None) -> Flask:
    settings = load_settings(config)
    try:
        runtime.runtime_dir()
    except runtime.UnsafeRuntimeDir as exc:
        raise ConfigError(str(exc)) from None
    base_url = settings.server.base_url
    app = Flask("nbflask")
    app.config.update(
        SECRET_KEY=security.session_key(runtime.secret("cookie_secret"), settings),
        MAX_CONTENT_LENGTH=settings.server.max_body_size,
        SESSION_COOKIE_NAME="nbflask-session",  # outside a request only: see auth.SessionInterface
        SESSION_COOKIE_PATH=base_url,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure,
        JSON_SORT_KEYS=False,
        NBFLASK_VERSION=__version__,
    )
    store = open_store(settings.store, settings.source)
    contents_service = Contents(store, Trust(), allow_hidden=settings.store.allow_hidden,
                                max_checkpoints=settings.store.max_checkpoints,
                                checkpoints=settings.store.checkpoints)
    kernel_host = _kernel_host(settings)
    recorded = RecordedOutputs(kernel_host, contents_service, settings.kernels.recording_save_interval)
    app.extensions[EXTENSION] = ServerState(
        settings=settings,
        token=_effective_token(settings),
        store=store,
        contents=contents_service,
        host=kernel_host,
        recorded=recorded,
        frontends=open_frontends(store),
    )
    app.before_request(recorded.start)  # in the serving process: gunicorn's workers, not its master

    errors.init_app(app)
    request_rules.init_app(app)
    compression.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(notebook.bp)
    app.register_blueprint(lab.bp)
    app.register_blueprint(labapi.bp)
    app.register_blueprint(assets.bp)
    app.register_blueprint(configapi.bp)
    app.register_blueprint(probes.bp)
    app.register_blueprint(nbconvert.bp)
    app.register_blueprint(contents.bp)
    app.register_blueprint(files.bp)
    app.register_blueprint(kernels.bp)
    app.register_blueprint(runs.bp)
    app.register_blueprint(kernelspecs.bp)
    app.register_blueprint(sessions.bp)
    if settings.terminals.enabled:
        app.register_blueprint(terminals.bp)

    # Outermost first: a proxy's X-Forwarded-Prefix becomes SCRIPT_NAME, to which base_url
    # then adds its own part, so /outer + /ipython/ is where the browser sees the server.
    if base_url != "/":
        app.wsgi_app = DispatcherMiddleware(
            _outside_prefix(base_url), {base_url.rstrip("/"): app.wsgi_app}
        )
    if settings.server.trust_xheaders:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)
    return app
