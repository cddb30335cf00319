"""A small Jupyter websocket client for the tests, speaking either websocket protocol.

It plays the part of JupyterLab: messages go to `/api/kernels/<id>/channels` with a token,
and replies are matched to requests by their parent header.
"""

from __future__ import annotations

import json
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import websocket

V1 = "v1.kernel.websocket.jupyter.org"


def v1_pack(channel: str, parts: list[bytes]) -> bytes:
    name = channel.encode()
    count = len(parts) + 2
    offsets = [8 * (count + 1), 8 * (count + 1) + len(name)]
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    return struct.pack(f"<{count + 1}Q", count, *offsets) + name + b"".join(parts)


def v1_unpack(data: bytes) -> dict[str, Any]:
    (count,) = struct.unpack_from("<Q", data)
    offsets = struct.unpack_from(f"<{count}Q", data, 8)
    channel = data[offsets[0]:offsets[1]].decode()
    parts = [data[offsets[i]:offsets[i + 1]] for i in range(1, count - 1)]
    message = {key: json.loads(part) for key, part in zip(
        ("header", "parent_header", "metadata", "content"), parts[:4], strict=True)}
    return {"channel": channel, **message, "buffers": parts[4:]}


def legacy_unpack(data: str | bytes) -> dict[str, Any]:
    if isinstance(data, str):
        return json.loads(data)
    (count,) = struct.unpack_from("!I", data)
    offsets = list(struct.unpack_from(f"!{count}I", data, 4)) + [len(data)]
    pieces = [data[offsets[i]:offsets[i + 1]] for i in range(count)]
    message = json.loads(pieces[0])
    message["buffers"] = pieces[1:]
    return message


SLEEP = "print('sleeping', flush=True)\nimport time\ntime.sleep(60)"


def sleeping(msg_id: str):
    """Matches the output of SLEEP run by request `msg_id`: the user's code is running now
    (execute_input comes a moment earlier, when a SIGINT would still hit the kernel itself)."""
    return lambda m: (m["header"]["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id
                      and "sleeping" in m["content"]["text"])


def replies_to(msg_id: str):
    return lambda m: m["channel"] == "shell" and m["parent_header"].get("msg_id") == msg_id


@dataclass
class Execution:
    reply: dict[str, Any]
    iopub: list[dict[str, Any]] = field(default_factory=list)

    def stream(self, name: str) -> str:
        return "".join(m["content"]["text"] for m in self.iopub
                       if m["header"]["msg_type"] == "stream" and m["content"]["name"] == name)

    def of_type(self, msg_type: str) -> list[dict[str, Any]]:
        return [m for m in self.iopub if m["header"]["msg_type"] == msg_type]


class KernelSocket:
    def __init__(self, base_url: str, kernel_id: str, token: str | None, *, v1: bool = False,
                 session_id: str | None = None, timeout: float = 30, cert: str | None = None,
                 cookie: str | None = None, origin: str | None = None, sock: Any = None) -> None:
        """`token` in the URL, as API clients do; or `cookie` and `origin`, as a browser does;
        `sock`: a TCP connection to the server already made (one a chosen worker accepted)."""
        self.session_id = session_id or uuid.uuid4().hex
        self.v1 = v1
        url = base_url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
        url += f"?session_id={self.session_id}" + (f"&token={token}" if token else "")
        self.ws = websocket.create_connection(url, timeout=timeout, subprotocols=[V1] if v1 else None,
                                              enable_multithread=True, skip_utf8_validation=True,
                                              sslopt={"ca_certs": cert} if cert else None,
                                              cookie=cookie, origin=origin, socket=sock)
        self.pending: list[dict[str, Any]] = []

    @property
    def subprotocol(self) -> str | None:
        return self.ws.getsubprotocol()

    def send(self, channel: str, msg_type: str, content: dict[str, Any], buffers: list[bytes] = (),
             parent: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> str:
        header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": "test",
                  "session": self.session_id, "date": "2026-01-01T00:00:00Z", "version": "5.3"}
        if self.v1:
            parts = [json.dumps(x).encode() for x in (header, parent or {}, metadata or {}, content)]
            self.ws.send_binary(v1_pack(channel, parts + list(buffers)))
        else:
            message = {"header": header, "parent_header": parent or {}, "metadata": metadata or {},
                       "content": content, "channel": channel, "buffers": []}
            self.ws.send(json.dumps(message))
        return header["msg_id"]

    def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            self.ws.send_binary(data)
        else:
            self.ws.send(data)

    def recv(self, timeout: float = 30) -> dict[str, Any]:
        if self.pending:
            return self.pending.pop(0)
        self.ws.settimeout(timeout)
        opcode, data = self.ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise ConnectionError(f"websocket closed by the server: {data[2:].decode(errors='replace')}")
        if opcode == websocket.ABNF.OPCODE_TEXT:
            data = data.decode()
        return v1_unpack(data) if self.v1 else legacy_unpack(data)

    def wait_for(self, predicate, timeout: float = 30) -> dict[str, Any]:
        """The first message matching `predicate`; others are kept for later."""
        deadline = time.monotonic() + timeout
        skipped = []
        try:
            while time.monotonic() < deadline:
                message = self.recv(max(0.1, deadline - time.monotonic()))
                if predicate(message):
                    return message
                skipped.append(message)
            raise TimeoutError("no matching message")
        finally:
            self.pending[:0] = skipped

    def execute(self, code: str, *, timeout: float = 60, stdin: str | None = None) -> Execution:
        """Run `code`; answer input() with `stdin`; return the reply once the kernel is idle."""
        msg_id = self.send("shell", "execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": stdin is not None, "stop_on_error": True})
        result = Execution(reply={})
        idle = False
        deadline = time.monotonic() + timeout
        while not (idle and result.reply):
            message = self.recv(max(0.1, deadline - time.monotonic()))
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            msg_type = message["header"]["msg_type"]
            if message["channel"] == "stdin" and msg_type == "input_request":
                self.send("stdin", "input_reply", {"value": stdin}, parent=message["header"])
            elif message["channel"] == "shell":
                result.reply = message
            elif message["channel"] == "iopub":
                result.iopub.append(message)
                if msg_type == "status" and message["content"]["execution_state"] == "idle":
                    idle = True
        return result

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> KernelSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
