"""A small terminado client for the tests: what JupyterLab's and Notebook 7's terminals send
and expect on `/terminals/websocket/<name>`."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import websocket


class TerminalSocket:
    def __init__(self, base_url: str, name: str, token: str | None, *, timeout: float = 30,
                 headers: list[str] | None = None) -> None:
        url = base_url.replace("http", "ws", 1) + f"terminals/websocket/{name}"
        auth = [f"Authorization: token {token}"] if token else []
        self.ws = websocket.create_connection(url, header=auth + (headers or []), timeout=timeout)
        self.output = ""  # all stdout received so far
        self.messages: list[list[Any]] = []  # every message but stdout, in order

    def send(self, *message: Any) -> None:
        self.ws.send(json.dumps(list(message)))

    def type(self, text: str) -> None:
        self.send("stdin", text)

    def resize(self, rows: int, cols: int) -> None:
        self.send("set_size", rows, cols, rows * 17, cols * 9)

    def recv(self) -> list[Any] | None:
        """One message; None once the server has closed the websocket."""
        try:
            data = self.ws.recv()
        except websocket.WebSocketConnectionClosedException:
            return None
        if not data:
            return None
        message = json.loads(data)
        if message[0] == "stdout":
            self.output += message[1]
        else:
            self.messages.append(message)
        return message

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match:
        """Read until the output matches `pattern` (a regex); fails with what came instead."""
        deadline = time.monotonic() + timeout
        searched = 0
        while True:
            match = re.compile(pattern).search(self.output, max(0, searched - 4096))
            searched = len(self.output)
            if match:
                return match
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} in the output: {self.output[-2000:]!r}"
            # Short waits: recv answers the server's pings and reads on, so its own timeout,
            # restarted by each ping, would never end.
            self.ws.settimeout(min(left, 0.5))
            try:
                message = self.recv()
            except websocket.WebSocketTimeoutException:
                continue
            if message is None:
                raise AssertionError(f"closed before {pattern!r}: {self.output[-2000:]!r} {self.messages}")

    def wait_closed(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.recv() is not None:
            assert time.monotonic() < deadline, "the websocket stayed open"

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> TerminalSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
