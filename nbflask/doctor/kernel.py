"""The check Jupyter behind proxies most needs: a kernel reached over a websocket, as the
page reaches it. A kernel is started by REST, its channels opened with the page's Origin and
cookies, a kernel_info_request sent and its reply awaited; then the kernel is deleted.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

from .client import Closed, Rejected, WebSocket
from .visit import Result, Visit, fail, ok

KERNEL_REPLY_SECONDS = 60
UPGRADE_HEADERS = ("proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade;"
                   " proxy_set_header Connection $connection_upgrade; (and the map from config/nginx.conf)")


def _upgrade_refused(exc: Rejected) -> Result:
    body = exc.body.decode("utf-8", "replace")
    if exc.status == 400 and "only accepts websocket upgrades" in body:
        return fail("websocket", "the upgrade reached nbflask as a plain request (HTTP 400):"
                    " the proxy dropped the Upgrade and Connection headers", UPGRADE_HEADERS)
    if exc.status == 403:
        return fail("websocket", f"the server refused the upgrade (HTTP 403): {body.strip()[:200]}",
                    "pass the browser's Host (proxy_set_header Host $http_host), or list the page's"
                    " origin in auth.allow_origin")
    if exc.status in (502, 503, 504):
        return fail("websocket", f"the proxy could not relay the upgrade (HTTP {exc.status})",
                    UPGRADE_HEADERS)
    return fail("websocket", f"the upgrade was answered with HTTP {exc.status}, not 101",
                "forward /api/kernels/<id>/channels to nbflask as a websocket: " + UPGRADE_HEADERS)


def _kernel_info_round_trip(ws: WebSocket, session_id: str) -> dict:
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "kernel_info_request", "username": "nbflask-doctor",
              "session": session_id, "date": datetime.now(timezone.utc).isoformat(), "version": "5.3"}
    ws.send_text(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": {},
                             "channel": "shell", "buffers": []}))
    deadline = time.monotonic() + KERNEL_REPLY_SECONDS
    while True:
        message = ws.receive(deadline)
        if isinstance(message, str):
            reply = json.loads(message)
            if reply.get("parent_header", {}).get("msg_id") == msg_id and reply.get("channel") == "shell":
                return reply


def check_kernel(visit: Visit) -> Iterator[Result]:
    """Start a kernel by REST, open its websocket as the page would, ask kernel_info, delete it."""
    if not visit.logged_in:
        for name in ("websocket", "kernel"):
            yield fail(name, "not checked: starting a kernel needs a login",
                       "run again with --token or --password")
        return
    started = visit.api("POST", "api/kernels", b"{}")
    kernel_id = (started.json() or {}).get("id") if started.status == 201 else None
    if not kernel_id:
        yield fail("websocket", f"could not start a kernel: HTTP {started.status}"
                   f" {started.body.decode('utf-8', 'replace')[:200]}", "see the server's log")
        return
    try:
        yield from _over_websocket(visit, kernel_id)
    finally:
        deleted = visit.api("DELETE", f"api/kernels/{kernel_id}")
    if deleted.status != 204:
        yield fail("cleanup", f"could not delete the kernel it started ({kernel_id}): HTTP {deleted.status}",
                   f"delete it: DELETE {visit.target.path}api/kernels/{kernel_id}")


def _over_websocket(visit: Visit, kernel_id: str) -> Iterator[Result]:
    target = visit.target
    session_id = uuid.uuid4().hex
    path = target.path + f"api/kernels/{kernel_id}/channels?session_id={session_id}"
    headers = {"Origin": target.origin, **visit.cookie_header()}  # as the page opens it
    scheme = "wss" if target.secure else "ws"
    try:
        ws = WebSocket(visit.client, path, headers)
    except Rejected as exc:
        yield _upgrade_refused(exc)
        return
    except TimeoutError:
        yield fail("websocket", f"no answer to the upgrade within {visit.client.timeout:.0f} s",
                   "something between holds upgrades back: " + UPGRADE_HEADERS)
        return
    except (Closed, OSError) as exc:
        yield fail("websocket", f"the connection ended during the upgrade: {exc}", UPGRADE_HEADERS)
        return
    try:
        yield ok("websocket", f"upgraded (101) at {scheme}://{target.netloc}{target.path}api/kernels/…")
        began = time.monotonic()
        try:
            reply = _kernel_info_round_trip(ws, session_id)
        except TimeoutError:
            yield fail("kernel", f"no kernel_info_reply within {KERNEL_REPLY_SECONDS} s",
                       "the proxy must not buffer or cut the stream (proxy_buffering off;"
                       " proxy_read_timeout 1d;), and the kernel must start (see the server's log)")
            return
        except (Closed, OSError) as exc:
            yield fail("kernel", f"the websocket ended before the kernel replied: {exc}",
                       "see the server's and the proxy's logs")
            return
        language = reply.get("content", {}).get("language_info", {}).get("name", "?")
        yield ok("kernel", f"kernel_info_reply ({language}) in {time.monotonic() - began:.1f} s")
    finally:
        ws.close()
