"""How long a client may hold a connection before it has said anything: the TLS handshake.

gevent's StreamServer, under `nbflask run` and in gunicorn's gevent workers alike, does the
handshake in the connection's greenlet with no time limit, so a client that opens TLS
connections and never finishes their handshakes keeps one file descriptor each for as long
as it likes. Here the handshake gets `server.handshake_timeout` seconds, then the
connection is closed. (The header and keep-alive bounds belong to each server's HTTP
parser: serving.py for gevent's, gunicorn's own `keepalive` for gunicorn.)
"""

from __future__ import annotations

import logging
import ssl
from contextlib import closing
from typing import Any

import gevent

log = logging.getLogger(__name__)


def handle_tls_within(server: Any, client_socket: Any, address: Any, seconds: float) -> Any:
    """gevent's `StreamServer.wrap_socket_and_handle`, closing a handshake not done in time.

    The socket is wrapped without a handshake, so the SSL socket owns the descriptor from the
    start and is closed whatever happens; the handshake then runs under the time limit.
    """
    ssl_args = {**server.ssl_args, "do_handshake_on_connect": False}
    with closing(server.wrap_socket(client_socket, **ssl_args)) as tls_socket:
        if not _handshake(tls_socket, address, seconds):
            return None
        return server.handle(tls_socket, address)


def _handshake(tls_socket: ssl.SSLSocket, address: Any, seconds: float) -> bool:
    try:
        with gevent.Timeout(seconds, False):
            tls_socket.do_handshake()
            return True
    except (ssl.SSLError, OSError) as exc:
        log.debug("TLS handshake with %s failed: %s", address, exc)
        return False
    log.debug("TLS handshake with %s not done after %s s: connection closed", address, seconds)
    return False
