"""A request body under `nbflask run`, read as strictly as its head and never waited on for ever.

gevent's `pywsgi.Input` has three habits a client can use against the server:
- after every response it reads and throws away whatever body the application left unread,
  with no time limit: a request announcing a gigabyte held its connection (and would read
  the gigabyte), a body that never came held it for ever, and with `Expect: 100-continue`
  both sides waited on each other;
- a read of the body waits for its bytes as long as the client likes;
- it ends a chunk's size line, extension or trailer at the first CR, then takes a bare LF
  inside them as data: `5;a\\nb` is a chunk of 5 to gevent and two lines to a proxy that
  ends lines at LF, which can hide a request inside the body (smuggling).
`BodyInput` throws nothing away (the handler closes the connection instead: see
`complete`), gives each read `idle_timeout` seconds without a byte, and reads chunk lines
and trailers by the rules of http_rules.py.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from gevent.pywsgi import MAX_REQUEST_LINE, Input, _InvalidClientInput

from . import http_rules

MAX_TRAILER_LINES = 100  # as for the head's lines


class BodyInput(Input):
    """gevent's request body with the three habits above replaced."""

    __slots__ = ("connection", "idle_timeout")

    def __init__(self, rfile: Any, content_length: int | None, *, continue_socket: Any,
                 chunked_input: bool, connection: socket.socket, idle_timeout: float) -> None:
        super().__init__(rfile, content_length, socket=continue_socket, chunked_input=chunked_input)
        self.connection = connection
        self.idle_timeout = idle_timeout

    @property
    def complete(self) -> bool:
        """Whether the body was read to its end: if not, where the next request begins on the
        connection is somewhere in the rest, which is never read, so the connection must end."""
        if self.chunked_input:
            return self.chunk_length == 0 and not self._chunked_input_error
        return self.position >= (self.content_length or 0)

    def _discard(self) -> None:
        """Read nothing: the handler closes a connection whose body is not `complete`."""

    def read(self, length: int | None = None) -> bytes:
        return self._within_idle_timeout(super().read, length)

    def readline(self, size: int | None = None) -> bytes:
        return self._within_idle_timeout(super().readline, size)

    def _within_idle_timeout(self, method: Callable[[int | None], bytes], size: int | None) -> bytes:
        # A socket timeout bounds each wait for bytes, not the whole read: an upload that
        # trickles in keeps going as long as something arrives.
        waited = self.connection.gettimeout()
        self.connection.settimeout(self.idle_timeout)
        try:
            return method(size)
        except TimeoutError:
            self._chunked_input_error = True  # the stream stopped somewhere inside the body
            raise _InvalidClientInput(f"no byte of the request body for {self.idle_timeout} s") from None
        finally:
            self.connection.settimeout(waited)

    # gevent's Input calls its private __read_chunk_length(rfile): this is that name, mangled.
    def _Input__read_chunk_length(self, rfile: Any) -> int:  # noqa: N802
        line = self._line(rfile)
        problem = http_rules.chunk_size_problem(line)
        if problem:
            raise self._refused(problem)
        size = int(line.split(b";", 1)[0].rstrip(b"\r\n"), 16)
        if size == 0:
            self._skip_trailers(rfile)
        return size

    def _skip_trailers(self, rfile: Any) -> None:
        """Read the trailer lines up to the blank line that ends the body, checking each as a
        header line (nobody uses them: WSGI has no place for trailers)."""
        for _ in range(MAX_TRAILER_LINES + 1):
            line = self._line(rfile)
            if line == b"\r\n":
                return
            problem = http_rules.header_line_problem(line)
            if problem:
                raise self._refused(f"trailer: {problem}")
        raise self._refused(f"more than {MAX_TRAILER_LINES} trailer lines")

    def _line(self, rfile: Any) -> bytes:
        line = rfile.readline(MAX_REQUEST_LINE + 1)
        if not line:
            raise self._refused("the connection ended inside the chunked body")
        if len(line) > MAX_REQUEST_LINE:
            raise self._refused(f"a chunk line longer than {MAX_REQUEST_LINE} bytes")
        return line

    def _refused(self, problem: str) -> _InvalidClientInput:
        self._chunked_input_error = True
        return _InvalidClientInput(problem)
