"""The terminal websocket relay: one page <-> one terminal of the kernel host, in terminado's
JSON messages.

The page sends `["stdin", text]` and `["set_size", rows, cols, ...]`; it gets `["setup", {}]`
once connected, then `["stdout", text]`, and `["disconnect", 1]` when the terminal ends. Two
workers per connection, as for kernels: the *reader* (the request's greenlet or thread) turns
the page's messages into host requests; the *pump* owns the subscription to the terminal's
output on the host's event feed and writes to the page. The pump subscribes first, confirms
the subscription, and only then asks for the scrollback, whose last chunk number tells it
which live chunks the scrollback already had: nothing is lost, nothing comes twice.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

import zmq
from simple_websocket import ConnectionClosed

from ..api_error import APIError
from ..protocol import zmqlib
from ..protocol.terminals import FULL, input_piece, topic
from ..websocket import Websocket
from .hostwatch import HostChecks, confirm_subscription

log = logging.getLogger(__name__)

BATCH = 256  # live chunks waiting at once are joined into one stdout message, up to this many


class TerminalRelay:
    def __init__(self, ws: Websocket, *, host: Any, name: str, input_buffer: int) -> None:
        self.ws = ws
        self.host = host
        self.name = name
        self.piece = input_piece(input_buffer)
        self.connection_id = uuid.uuid4().hex
        self.done = threading.Event()

    # Reader: page -> host ----------------------------------------------------------------

    def run(self) -> None:
        """Relay until the page or the terminal goes; returns once the pump has detached."""
        pump = threading.Thread(target=self.pump, daemon=True, name=f"terminal-{self.connection_id[:8]}")
        pump.start()
        try:
            while not self.done.is_set():
                data = self.ws.receive(timeout=5)
                if data is None:
                    if not self.ws.connected:
                        break
                    continue
                self.on_message(data)
        except APIError as exc:  # the terminal or the host went away
            log.debug("terminal %s: %s", self.name, exc.message)
        finally:
            self.done.set()
            pump.join(10)

    def on_message(self, data: str | bytes) -> None:
        try:
            message = json.loads(data)
            kind = message[0]
        except (ValueError, TypeError, IndexError, KeyError):
            log.warning("terminal %s: dropped a message that is not a JSON array: %.80r", self.name, data)
            return
        if kind == "stdin" and len(message) > 1 and isinstance(message[1], str):
            self.write(message[1])
        elif kind == "set_size" and len(message) > 2:
            try:
                self.host.terminal_resize(self.name, self.connection_id, message[1], message[2])
            except APIError as exc:
                if exc.status != 400:
                    raise
                log.warning("terminal %s: %s", self.name, exc.message)
        else:
            log.debug("terminal %s: ignored a %.20r message", self.name, kind)

    def write(self, text: str) -> None:
        """Hand the host a page's input piece by piece, each waiting while the host's queue for
        the terminal is full; what the program did not take in time is not sent, and the page
        is told so in the terminal (terminado has no error message)."""
        for start in range(0, len(text), self.piece):
            try:
                self.host.terminal_input(self.name, text[start:start + self.piece])
            except APIError as exc:
                if exc.reason != FULL:
                    raise
                left = len(text) - start
                log.warning("terminal %s: %d characters of input not sent: %s", self.name, left, exc.message)
                notice = f"[nbflask: {left} characters of input not sent: {exc.message}]"
                self.send(["stdout", f"\r\n{notice}\r\n"])
                return

    # Pump: host's event feed -> page -------------------------------------------------------

    def pump(self) -> None:
        events = zmqlib.socket(zmq.SUB, connect=self.host.events_url(), RCVHWM=0)
        events.setsockopt(zmq.SUBSCRIBE, topic(self.name))
        attached = False
        try:
            if not confirm_subscription(self.host, events, topic(self.name).decode(), self.connection_id):
                log.warning("terminal %s: no host events; live output may be missed", self.name)
            start = self.host.terminal_attach(self.name, self.connection_id)
            attached = True
            host_pid = self.host.pid()
            self.send(["setup", {}])
            if start["scrollback"]:
                self.send(["stdout", start["scrollback"]])
            self.relay_output(events, start["seq"], host_pid)
        except APIError as exc:
            self.end(1011, exc.message)
        except ConnectionClosed:
            pass
        except Exception:
            if self.ws.connected:
                log.exception("terminal %s: relay stopped", self.name)
        finally:
            events.close()
            if attached:
                try:
                    self.host.terminal_detach(self.name, self.connection_id)
                except APIError as exc:
                    log.debug("terminal %s: detach failed: %s", self.name, exc.message)
            self.done.set()

    def relay_output(self, events: Any, seen: int, host_pid: int | None) -> None:
        """Live output newer than chunk `seen`, until the terminal ends, the host dies, or the
        page goes."""
        checks = HostChecks(host_pid)
        while not self.done.is_set():
            if checks.host_died():
                self.end(1011, f"the kernel host (pid {host_pid}) died, and its terminals with it")
                return
            if not zmqlib.poll(events, 250):
                continue
            texts: list[str] = []
            while len(texts) < BATCH:
                try:
                    frames = events.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                event = json.loads(frames[1])
                if event.get("event") == "disconnect":
                    if texts:
                        self.send(["stdout", "".join(texts)])
                    self.end(1000, "terminal ended")
                    return
                if event.get("event") == "stdout" and event["seq"] > seen:
                    seen = event["seq"]
                    texts.append(frames[2].decode())
            if texts:
                self.send(["stdout", "".join(texts)])

    def send(self, message: list[Any]) -> None:
        self.ws.send(json.dumps(message))

    def end(self, code: int, reason: str) -> None:
        """Tell the page the terminal is gone (terminado's `disconnect`), then hang up."""
        log.info("terminal %s: %s", self.name, reason)
        try:
            self.send(["disconnect", 1])
            self.ws.close(code, reason[:120])
        except (ConnectionClosed, OSError):
            pass
