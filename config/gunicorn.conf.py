"""gunicorn settings for nbflask: gevent workers sharing one kernel host.

    gunicorn -c config/gunicorn.conf.py -k gevent -w 3 -b 127.0.0.1:8888 'nbflask:create_app()'

The deployment's YAML file is named by NBFLASK_CONFIG. The master starts the kernel host
before it forks the workers (so every worker finds the same kernels, and a recycled worker
loses nothing) and stops it, with its kernels, when gunicorn exits. With `kernels.host:
service` the workers use the host `nbflask kernel-host` runs as a service of its own instead,
so restarting or upgrading gunicorn leaves the kernels running. With `auth.token: auto`
the master draws one token for all workers and logs it, since each worker would otherwise
draw its own. The deployment's `server.*_timeout` settings bound slow clients here too.
"""

import os
import secrets

from nbflask.config import ConfigError, load_settings

try:
    nbflask_settings = load_settings(None)  # the deployment (NBFLASK_CONFIG), read once by the master
except ConfigError as error:
    raise SystemExit(f"nbflask: {error}") from None  # one line, as `nbflask run` says it

worker_class = "gevent"
# Kernel websockets stay open for hours: gunicorn's worker timeout is about the heartbeat of
# a worker, which gevent workers keep while connections are open.
timeout = 60
# gunicorn's gevent worker has one timer for the wait for a request, idle time and line and
# headers together (`nbflask run` times them apart): the smaller of the two keeps both bounds.
keepalive = min(nbflask_settings.server.header_timeout, nbflask_settings.server.keepalive_timeout)
# What a proxy says (scheme, prefix, client) is nbflask's to trust, by server.trust_xheaders:
# gunicorn's own defaults would take X-Forwarded-Proto and a SCRIPT_NAME header from any
# process on loopback whatever that setting says.
secure_scheme_headers = {}
forwarder_headers = ""


def on_starting(server):
    from nbflask import host_client as client
    from nbflask import runtime

    if nbflask_settings.auth.token == "auto":
        token = "nb" + secrets.token_hex(24)  # the prefix keeps YAML from reading it as a number
        os.environ["NBFLASK_AUTH_TOKEN"] = token
        server.log.info("nbflask: every worker accepts the token %s", token)
    if nbflask_settings.kernels.host == client.SERVICE:
        server.log.info("nbflask: the workers use the kernel host service (`nbflask kernel-host`)")
        return
    os.environ[runtime.ENV_OWNER] = str(os.getpid())  # the workers use the master's host
    client.start_host(nbflask_settings)


def on_exit(server):
    from nbflask import host_client as client

    client.stop_host()  # this master's own host, if it has one; never the service host


def post_fork(server, worker):
    from nbflask import gunicorn_worker

    gunicorn_worker.hold_stop_signals()  # until the worker's own handlers are in place


def post_worker_init(worker):
    from nbflask import gunicorn_worker

    gunicorn_worker.serve_accepted_connections_after_close()  # a retiring worker drops no request
    gunicorn_worker.close_websockets_on_retirement(worker)  # ... nor keeps its websockets waiting
    gunicorn_worker.close_idle_connections_on_retirement(worker)  # ... nor idle kept-alive ones
    gunicorn_worker.bound_tls_handshakes(nbflask_settings.server)  # a stalled handshake is closed in time
    gunicorn_worker.read_bodies_strictly(worker, nbflask_settings.server)  # bad or stalled bodies: 400, close
    gunicorn_worker.answer_parse_errors_in_json()  # gunicorn's own 400s say why in JSON
    gunicorn_worker.release_stop_signals()  # a stop sent while it booted takes effect now
