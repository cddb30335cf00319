"""A fix for gunicorn's gevent workers: a worker that retires serves what it had accepted.

A gevent worker that is recycled (`max_requests`) or reloaded (SIGHUP) calls `close()` on its
gevent server, which closes the listening socket and drops the server's handler at once. But
connections it accepted a moment earlier are handled by greenlets that have not run yet:
with TLS the handshake then finds no handler (`AttributeError: 'StreamServer' object has no
attribute 'handle'`, gevent issue 2071, gunicorn issue 3315), and gunicorn's handler itself
asks the closed listener for its name (`OSError: [Errno 9] Bad file descriptor`). Either
way the client sees its connection closed without a response: some requests of every
recycling were lost. In a worker, closing only needs to stop accepting; the listening socket
is the master's and the worker's copy goes when it exits.
"""

from __future__ import annotations

from typing import Any


def serve_accepted_connections_after_close() -> None:
    """Make `close()` of gevent's StreamServer, in this process, only stop accepting."""
    from gevent.server import StreamServer

    def close(self: Any) -> None:
        self._stop_event.set()
        self.stop_accepting()

    StreamServer.close = close
