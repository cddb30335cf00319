"""Assembles the Flask application for one deployment from its settings."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
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


def _install_hooks(app: Flask, settings: Settings, recorded: RecordedOutputs) -> None:
    """Everything that acts on every request of the app, in one place and in the order it runs.

    Blueprints hold their routes only: a hook registered from a blueprint would run in the
    order the blueprints happen to be registered, and be found only by reading them all.
    """
    app.request_class = request_rules.BoundedRequest  # max_body_size for chunked bodies too
    app.session_interface = auth.SessionInterface()  # cookie name, Secure and Path per request
    app.permanent_session_lifetime = timedelta(seconds=settings.auth.session_lifetime)
    app.extensions[auth.LIMITER] = security.LoginLimiter(  # failed logins, counted across workers
        runtime.runtime_dir() / "login-attempts.json", settings.auth.login_max_failures,
        settings.auth.login_window, scope=str(runtime.host_owner()),
    )
    app.context_processor(auth.template_helpers)
    for error, handler in errors.HANDLERS.items():
        app.register_error_handler(error, handler)

    # Before every request, first to last; the first hook that answers ends the request there.
    before_request = [
        recorded.start,  # the writer starts with the first request: in gunicorn's workers, not its master
        request_rules.utf8_path_problem,  # first of the rules: the others read request.path
        request_rules.trailing_slash_redirect,  # before the gate, which then guards the target
        auth.check_host,  # DNS rebinding: a foreign Host is refused before credentials are read
        auth.check_websocket_origin,  # cross-site websockets, before the cookies let them in
        auth.answer_preflight,  # CORS preflights carry no credentials: answered before the gate
        auth.gate,  # credentials for every route not marked @public
    ]
    # After every response, first to last, on answers of views, hooks and error handlers alike.
    after_request = [
        api.record_activity,  # API use counts as activity whatever it answered
        auth.xsrf_cookie,  # the session's XSRF token mirrored for the pages' scripts
        auth.security_headers,  # CSP, nosniff, CORS: on every answer, redirects and errors too
        compression.compress_json,  # last: it gzips the body as the others leave it
    ]
    for hook in before_request:
        app.before_request(hook)
    for hook in reversed(after_request):  # Flask calls after_request hooks last registered first
        app.after_request(hook)


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
    _install_hooks(app, settings, recorded)
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
