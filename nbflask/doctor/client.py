"""How the doctor talks to a deployment: plain sockets, TLS, HTTP/1.1 and a websocket, with
nothing hidden in between, so every failure can be told apart and explained.

Built on the standard library and wsproto (already how the server speaks websockets): no
redirect following, no proxy from the environment, no retries, and every read has a deadline.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)


class DoctorError(Exception):
    """A URL the doctor cannot check, said in one line."""


@dataclass(frozen=True)
class Target:
    """The deployment as the browser addresses it: `https://host:port/prefix/`."""

    scheme: str
    host: str
    port: int
    path: str  # the prefix, starting and ending with '/'

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DoctorError(f"{url!r} is not an http:// or https:// URL with a host name")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise DoctorError(f"{url!r} has an invalid port") from None
        path = parts.path or "/"
        return cls(parts.scheme, parts.hostname, port, path if path.endswith("/") else path + "/")

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @property
    def netloc(self) -> str:
        """What a browser sends in Host: the port only when it is not the scheme's own."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    def url(self, path: str = "") -> str:
        return self.origin + self.path + path


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    def all(self, name: str) -> list[str]:
        return self.headers.get_all(name) or []

    def json(self) -> Any:
        """The body as JSON, or None if it is not JSON (an HTML error page from a proxy)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class Client:
    """Connections to one Target, trusting `cafile` (else the system's CAs) for TLS."""

    target: Target
    cafile: str | None = None
    timeout: float = 10
    tls_context: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self.tls_context = ssl.create_default_context(cafile=self.cafile)

    def connect(self) -> socket.socket:
        """A connected socket, TLS already negotiated and verified for an https Target."""
        sock = socket.create_connection((self.target.host, self.target.port), timeout=self.timeout)
        if not self.target.secure:
            return sock
        try:
            return self.tls_context.wrap_socket(sock, server_hostname=self.target.host)
        except BaseException:
            sock.close()
            raise

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> Reply:
        """One request on a fresh connection; `path` is from the origin, e.g. '/ipython/api'."""
        connection_class = http.client.HTTPSConnection if self.target.secure else http.client.HTTPConnection
        options = {"context": self.tls_context} if self.target.secure else {}
        connection = connection_class(self.target.host, self.target.port, timeout=self.timeout, **options)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", self.target.netloc)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()


class Rejected(Exception):
    """The server answered the websocket upgrade with an HTTP response instead of 101."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class Closed(Exception):
    """The websocket was closed, or the connection dropped, before the awaited message."""


class WebSocket:
    """A client websocket over `Client.connect()`, sending Host, Origin and Cookie as a page
    at the Target's origin would."""

    def __init__(self, client: Client, path: str, headers: dict[str, str]) -> None:
        self.sock = client.connect()
        self.timeout = client.timeout
        self.ws = WSConnection(ConnectionType.CLIENT)
        extra = [(name.encode(), value.encode()) for name, value in headers.items()]
        self.sock.sendall(self.ws.send(Request(host=client.target.netloc, target=path, extra_headers=extra)))
        self.pending: list[str | bytes] = []
        self._text: list[str] = []
        self._bytes: list[bytes] = []
        self._read_until_open()

    def _read_until_open(self) -> None:
        deadline = time.monotonic() + self.timeout
        status, body = 0, b""
        while True:
            for event in self._events(deadline):
                if isinstance(event, AcceptConnection):
                    return
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise Rejected(status, b"")
                if isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        raise Rejected(status, body)

    def _events(self, deadline: float) -> list[Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        data = self.sock.recv(65536)
        self.ws.receive_data(data or None)
        events = list(self.ws.events())
        if not data and not events:
            raise Closed("the connection was closed")
        return events

    def send_text(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=text)))

    def receive(self, deadline: float) -> str | bytes:
        """The next whole message; TimeoutError at `deadline`, Closed if the socket ends."""
        while not self.pending:
            for event in self._events(deadline):
                if isinstance(event, Ping):
                    self.sock.sendall(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    raise Closed(f"closed by the server with code {event.code} {event.reason or ''}".strip())
                elif isinstance(event, TextMessage):
                    self._text.append(event.data)
                    if event.message_finished:
                        self.pending.append("".join(self._text))
                        self._text.clear()
                elif isinstance(event, BytesMessage):
                    self._bytes.append(bytes(event.data))
                    if event.message_finished:
                        self.pending.append(b"".join(self._bytes))
                        self._bytes.clear()
        return self.pending.pop(0)

    def close(self) -> None:
        try:
            self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        except Exception:  # noqa: BLE001 - closing a connection that may be gone already
            pass
        self.sock.close()
