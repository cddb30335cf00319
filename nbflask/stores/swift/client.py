"""python-swiftclient connections to one container: pooled, sharing one token, each request
with a timeout and few retries, and every failure one store error naming what failed.

swiftclient's defaults wait 31 s on a dead server and forever on a hung one, so every
connection gets the configured `timeout` (per attempt) and `retries`. Every failure becomes
Unavailable (503) or TimedOut (504) with a message naming the store and the request that
failed. swiftclient renews an expired token once on a 401 by itself. Connections are pooled
(one request at a time each; no threads), and the token is shared between them so one
renewal serves all.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import requests
import urllib3
from swiftclient.client import Connection
from swiftclient.exceptions import ClientException

from ...config import SwiftSettings
from ..base import StoreError, StoreFull, TimedOut, Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Idle connections kept for the next requests.
POOL_SIZE = 8
#: What a request can fail with short of an HTTP answer: refused, reset, timed out, cut off.
TRANSPORT_ERRORS = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError)


def connection_options(settings: SwiftSettings) -> dict[str, Any]:
    """The keyword arguments of `swiftclient.Connection` for these settings.

    Kept apart from the store so the Keystone branch, which needs a real Keystone to run,
    can still be checked: it is plain data.
    """
    kwargs: dict[str, Any] = {
        "authurl": settings.auth_url,
        "user": settings.user,
        "key": settings.key,
        "auth_version": settings.auth_version,
        "timeout": settings.timeout,
        "retries": settings.retries,
        "starting_backoff": 0.2,
        "max_backoff": 2,
        "retry_on_ratelimit": False,
    }
    if settings.auth_version == "3":
        os_options = {
            "project_name": settings.project_name,
            "user_domain_name": settings.user_domain_name,
            "project_domain_name": settings.project_domain_name,
        }
        if settings.region:
            os_options["region_name"] = settings.region
        kwargs["os_options"] = os_options
    return kwargs


def _status_text(exc: ClientException) -> str:
    return f"{exc.http_status} {exc.http_reason}".strip() if exc.http_status else str(exc.msg)


class SwiftClient:
    """The store's way to Swift: `call` runs one request, `stream` one GET read as it goes."""

    def __init__(self, settings: SwiftSettings) -> None:
        if settings.auth_version == "3" and importlib.util.find_spec("keystoneclient") is None:
            raise ValueError(
                "auth_version 3 (Keystone) needs python-keystoneclient: pip install python-keystoneclient"
            )
        self.settings = settings
        self.container = settings.container
        self.connection_options = connection_options(settings)
        self._idle: list[Connection] = []
        self._auth: tuple[str, str] | None = None
        self._container_ready = False

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _checkout(self) -> Connection:
        """An idle pooled connection (or a new one), carrying the newest token any got."""
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = Connection(**self.connection_options)
        if self._auth is not None and conn.token != self._auth[1]:
            conn.url, conn.token = self._auth
        return conn

    def _release(self, conn: Connection) -> None:
        """Back to the pool after a complete answer."""
        self._remember_token(conn)
        if len(self._idle) < POOL_SIZE:
            self._idle.append(conn)
        else:
            conn.close()

    def _discard(self, conn: Connection) -> None:
        """Close a connection whose socket may be mid-response; the next request opens anew."""
        self._remember_token(conn)
        conn.close()

    def _remember_token(self, conn: Connection) -> None:
        if conn.url and conn.token:
            self._auth = (conn.url, conn.token)

    def _on_connection(self, request: Callable[[Connection], T]) -> T:
        """Run a request on a pooled connection; keep it after any answer, drop it otherwise."""
        conn = self._checkout()
        try:
            result = request(conn)
        except ClientException:
            self._release(conn)  # Swift answered (an error status is a complete answer)
            raise
        except BaseException:
            self._discard(conn)
            raise
        self._release(conn)
        return result

    def failure(self, what: str, exc: BaseException) -> StoreError:
        """One clear store error for a failed Swift request."""
        where = f"swift store (container '{self.container}' via {self.settings.auth_url})"
        if isinstance(exc, ClientException):
            if exc.http_status == 401:
                return Unavailable(
                    f"{where}: {what} failed: Swift refused the login of '{self.settings.user}' (401)"
                    " even after renewing the token"
                )
            if exc.http_status in (413, 507):  # over a quota or the object size limit; disks full
                return StoreFull(f"{where}: {what} failed: Swift has no room for it ({_status_text(exc)})")
            return Unavailable(f"{where}: {what} failed: Swift answered {_status_text(exc)}")
        timed_out = isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError))
        if timed_out:
            return TimedOut(f"{where}: {what} failed: no answer within {self.settings.timeout:g} s")
        return Unavailable(f"{where}: {what} failed: cannot reach Swift ({type(exc).__name__}: {exc})")

    def call(self, what: str, request: Callable[[Connection], T], missing: StoreError | None = None) -> T:
        """Run one request on a pooled connection; a 404 raises `missing` when it is given."""
        self._ensure_container()
        try:
            return self._on_connection(request)
        except ClientException as exc:
            if exc.http_status == 404 and missing is not None:
                raise missing from None
            raise self.failure(what, exc) from None
        except TRANSPORT_ERRORS as exc:
            raise self.failure(what, exc) from None

    def stream(
        self, what: str, name: str, chunk_size: int, missing: StoreError
    ) -> tuple[dict[str, str], Iterator[bytes]]:
        """GET one object: its headers, and its body read as it is consumed, holding a connection
        until the end; a 404 raises `missing`.

        A body cut off mid-transfer is resumed by swiftclient with a Range GET that carries
        If-Match, so a save landing meanwhile can never be spliced in: that fails instead.
        """
        self._ensure_container()
        conn = self._checkout()
        try:
            headers, body = conn.get_object(self.container, name, resp_chunk_size=chunk_size)
        except ClientException as exc:
            self._release(conn)
            if exc.http_status == 404:
                raise missing from None
            raise self.failure(what, exc) from None
        except TRANSPORT_ERRORS as exc:
            self._discard(conn)
            raise self.failure(what, exc) from None

        def chunks() -> Iterator[bytes]:
            try:
                yield from body
            except (ClientException, *TRANSPORT_ERRORS) as exc:
                self._discard(conn)
                raise self.failure(what + " (mid-transfer)", exc) from None
            except BaseException:
                self._discard(conn)  # the reader went away before the end
                raise
            self._release(conn)

        return headers, chunks()

    def _ensure_container(self) -> None:
        """Create the container on first use if allowed; say clearly when it is missing."""
        if self._container_ready:
            return
        self._container_ready = True
        settings = self.settings
        try:
            try:
                self._on_connection(lambda conn: conn.head_container(self.container))
            except ClientException as exc:
                if exc.http_status != 404:
                    raise
                if not settings.create_container:
                    raise Unavailable(
                        f"swift store: container '{self.container}' does not exist at {settings.auth_url}"
                        " and create_container is false"
                    ) from None
                log.info("creating Swift container %r", self.container)
                self._on_connection(lambda conn: conn.put_container(self.container))
        except ClientException as exc:
            self._container_ready = False
            if exc.http_status == 403:
                raise Unavailable(
                    f"swift store: container '{self.container}' does not exist and user '{settings.user}'"
                    f" may not create it (403 Forbidden): create it, or grant the user write access"
                ) from None
            raise self.failure(f"checking container '{self.container}'", exc) from None
        except TRANSPORT_ERRORS as exc:
            self._container_ready = False
            raise self.failure(f"checking container '{self.container}'", exc) from None
        except StoreError:
            self._container_ready = False
            raise
