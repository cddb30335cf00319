"""The terminal registry inside the kernel host: ptys, their shells, scrollback and culling.

Runs only in the host process, under gevent. Each terminal is a shell on its own pty, in its
own session (so the pty is its controlling terminal: Ctrl-C and resizes reach the foreground
job). One greenlet reads the pty and publishes what it reads on the host's event feed, topic
`term:<name>/`, each chunk numbered; a bounded scrollback keeps the newest output for pages
that (re)connect. One greenlet per terminal writes queued input (bounded: terminal_input.py), so a
program that stops reading stalls only its own terminal. Pages come and go without touching the shell: only
DELETE, culling and the host's shutdown end it, with every process of its session.
"""

from __future__ import annotations

import codecs
import errno
import fcntl
import logging
import os
import pwd
import re
import signal
import struct
import subprocess
import termios
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import gevent
import gevent.lock
import gevent.os

from .. import runtime
from ..api_error import APIError
from ..clock import isoformat, utcnow
from ..config import Settings
from ..protocol.terminals import topic
from .terminal_input import InputQueue

log = logging.getLogger(__name__)

TERM_TYPE = "xterm-256color"  # what xterm.js, in JupyterLab and Notebook 7, understands
DEFAULT_SIZE = (24, 80)
READ_SIZE = 65536
HANGUP_GRACE = 1.0  # seconds a shell has to exit on SIGHUP before its session is killed
NAME = re.compile(r"\w{1,64}", re.ASCII)  # Jupyter's route takes \w+


def utf8_keystrokes(text: str) -> bytes:
    """A page's input as UTF-8 for the pty. A JavaScript string may hold a lone surrogate (a
    paste cut inside an emoji), which UTF-8 cannot encode: it is typed as U+FFFD, as the
    browser shows it, rather than failing the whole message."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


class Scrollback:
    """The newest output of a terminal, at most `limit` bytes of UTF-8, in numbered chunks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: deque[tuple[str, int]] = deque()  # text, its size in bytes
        self.size = 0
        self.seq = 0  # the number of the newest chunk

    def append(self, text: str, size: int) -> int:
        self.seq += 1
        self.chunks.append((text, size))
        self.size += size
        while self.size > self.limit and len(self.chunks) > 1:
            self.size -= self.chunks.popleft()[1]
        if self.size > self.limit:  # one chunk bigger than the whole buffer: keep its end
            end = text.encode()[-self.limit:].decode(errors="ignore")
            self.chunks[0] = (end, len(end.encode()))
            self.size = self.chunks[0][1]
        return self.seq

    def text(self) -> str:
        return "".join(text for text, _ in self.chunks)


@dataclass
class Terminal:
    name: str
    process: subprocess.Popen
    master: int
    scrollback: Scrollback
    cwd: str
    input: InputQueue
    last_activity: datetime = field(default_factory=utcnow)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # connection id -> rows, cols
    workers: dict[str, int] = field(default_factory=dict)  # connection id -> pid of its web worker
    greenlets: list[Any] = field(default_factory=list)
    closed: bool = False

    def model(self) -> dict[str, Any]:
        return {"name": self.name, "last_activity": isoformat(self.last_activity)}

    def touch(self) -> None:
        self.last_activity = utcnow()


def login_shell() -> list[str]:
    """The user's login shell, run as a login shell (profiles read), as Jupyter does when the
    server has no terminal of its own."""
    try:
        shell = pwd.getpwuid(os.getuid()).pw_shell
    except KeyError:
        shell = ""
    shell = shell or os.environ.get("SHELL") or "/bin/sh"
    return [shell, "-l"]


def set_size(fd: int, rows: int, cols: int) -> None:
    """Resize the pty; the kernel tells its foreground job with SIGWINCH."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _new_session_on_the_pty() -> None:
    """In the child: a session of its own, whose controlling terminal is the pty on stdin.
    (Here, not with start_new_session: gevent's subprocess runs preexec_fn before setsid.)"""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def session_processes(session: int) -> list[int]:
    """Pids of every process in session `session` (the shell and all it started, background
    jobs in their own process groups included), read from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        if len(fields) > 3 and fields[3] == str(session):
            pids.append(int(entry.name))
    return pids


def kill_session(leader: int, signum: int) -> None:
    """Send `signum` to every process of the session led by `leader` (its process group where
    /proc cannot tell)."""
    members = session_processes(leader) if os.path.isdir("/proc/self") else []
    targets = members or [leader]
    for pid in targets:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
    if not members:
        try:
            os.killpg(leader, signum)
        except (ProcessLookupError, PermissionError):
            pass


class TerminalManager:
    """Starts, feeds, resizes, culls and stops this deployment's terminals."""

    def __init__(self, settings: Settings, send: Callable[[list[bytes]], None]) -> None:
        self.settings = settings
        self.send = send
        self.terminals: dict[str, Terminal] = {}
        self.creating = gevent.lock.Semaphore()  # one at a time: a free name stays free until taken

    # Lookup ------------------------------------------------------------------------------

    def get(self, name: str) -> Terminal:
        terminal = self.terminals.get(name)
        if terminal is None:
            raise APIError(404, f"Terminal not found: {name}")
        return terminal

    def models(self) -> list[dict[str, Any]]:
        return [terminal.model() for terminal in list(self.terminals.values())]

    def model(self, name: str) -> dict[str, Any]:
        return self.get(name).model()

    def default_cwd(self) -> str:
        """The configured folder, else the file store's root, else the home folder."""
        if self.settings.terminals.root_dir:
            return os.path.abspath(os.path.expanduser(self.settings.terminals.root_dir))
        store = self.settings.store
        if store.class_name == "file" and os.path.isdir(store.root_dir):
            return store.root_dir
        return os.path.expanduser("~")

    def working_dir(self, cwd: str | None) -> str:
        """Where a new terminal starts: `cwd` (relative to the default folder) if it is a
        folder, as Jupyter does, else the default folder."""
        default = self.default_cwd()
        if cwd:
            folder = Path(default, os.path.expanduser(cwd)).resolve()
            if folder.is_dir():
                return str(folder)
        return default

    # Lifecycle ---------------------------------------------------------------------------

    def create(self, name: str | None = None, cwd: str | None = None) -> dict[str, Any]:
        """A new terminal named `name` (default: the smallest free number, as in Jupyter).
        Asking for a running terminal's name returns it: its shell is not replaced."""
        if name is not None:
            if not isinstance(name, str) or not NAME.fullmatch(name):
                raise APIError(400, f"Invalid terminal name {name!r}: use 1 to 64 letters, digits"
                                    " or '_'", "InvalidTerminalName")
            if name in self.terminals:
                return self.terminals[name].model()
        if cwd is not None and not isinstance(cwd, str):
            raise APIError(400, "'cwd' must be a string", "Bad Request")
        with self.creating:  # starting a shell yields to other greenlets
            if name in self.terminals:
                return self.terminals[name].model()
            name = name or self._free_name()
            terminal = self._spawn(name, self.working_dir(cwd))
            self.terminals[name] = terminal
        terminal.greenlets = [gevent.spawn(self._read, terminal), gevent.spawn(self._write, terminal)]
        log.info("terminal %s started in %s (pid %d)", name, terminal.cwd, terminal.process.pid)
        return terminal.model()

    def _free_name(self) -> str:
        number = 1
        while str(number) in self.terminals:
            number += 1
        return str(number)

    def _spawn(self, name: str, cwd: str) -> Terminal:
        settings = self.settings.terminals
        command = list(settings.shell_command) or login_shell()
        env = runtime.child_environment({
            "TERM": TERM_TYPE, "JUPYTER_SERVER_ROOT": self.settings.store.root_dir, **settings.env})
        master, slave = os.openpty()
        try:
            set_size(slave, *DEFAULT_SIZE)
            process = subprocess.Popen(
                command, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                preexec_fn=_new_session_on_the_pty, close_fds=True)
        except OSError as exc:
            os.close(master)
            raise APIError(500, f"Terminal could not start: cannot run {command[0]}: {exc.strerror}",
                           "TerminalStartFailed") from None
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        return Terminal(name, process, master, Scrollback(settings.scrollback_bytes), cwd,
                        InputQueue(settings.input_buffer_bytes))

    def _read(self, terminal: Terminal) -> None:
        """Publish what the pty says until it closes (every process holding it is gone)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            try:
                data = gevent.os.nb_read(terminal.master, READ_SIZE)
            except OSError as exc:
                if exc.errno not in (errno.EIO, errno.EBADF):
                    log.warning("terminal %s: reading its pty failed: %s", terminal.name, exc)
                data = b""
            if not data:
                break
            text = decoder.decode(data)
            if text:
                terminal.touch()
                encoded = text.encode()
                seq = terminal.scrollback.append(text, len(encoded))
                self.send([topic(terminal.name), b'{"event": "stdout", "seq": %d}' % seq, encoded])
        if not terminal.closed:
            log.info("terminal %s ended: its shell exited", terminal.name)
            gevent.spawn(self.end, terminal)

    def _write(self, terminal: Terminal) -> None:
        """Write queued input to the pty, in order, waiting while the program is not reading."""
        while True:
            data = memoryview(terminal.input.get())
            while data:
                try:
                    written = gevent.os.nb_write(terminal.master, data)
                except OSError as exc:
                    log.debug("terminal %s: input dropped: %s", terminal.name, exc)
                    written = len(data)
                data = data[written:]
                terminal.input.written(written)

    def write(self, name: str, data: str) -> None:
        """Queue keystrokes (or a piece of a paste) for the terminal's program, waiting for
        room while it is not reading; refused (InputQueue.put) if none comes."""
        if not isinstance(data, str):
            raise APIError(400, "stdin data must be a string", "Bad Request")
        terminal = self.get(name)
        terminal.touch()
        terminal.input.put(utf8_keystrokes(data))

    def shutdown(self, name: str) -> None:
        self.end(self.get(name))

    def end(self, terminal: Terminal) -> None:
        """End the terminal: SIGHUP to its whole session (as a closing terminal would), then
        SIGKILL to whatever is left; pages connected are told `disconnect`. Once only: a
        DELETE, the culler and the shell's own exit may all come at once."""
        if terminal.closed:
            return
        terminal.closed = True
        terminal.input.close()
        name = terminal.name
        if self.terminals.get(name) is terminal:
            del self.terminals[name]
        leader = terminal.process.pid
        kill_session(leader, signal.SIGHUP)
        try:
            terminal.process.wait(HANGUP_GRACE)
        except subprocess.TimeoutExpired:
            pass
        kill_session(leader, signal.SIGKILL)
        try:
            terminal.process.wait(5)
        except subprocess.TimeoutExpired:
            log.error("terminal %s: shell %d did not die after SIGKILL", name, leader)
        gevent.killall(terminal.greenlets, timeout=5)
        os.close(terminal.master)
        self.send([topic(name), b'{"event": "disconnect"}'])
        log.info("terminal %s shut down", name)

    def shutdown_all(self) -> None:
        gevent.joinall([gevent.spawn(self.end, terminal) for terminal in list(self.terminals.values())],
                       timeout=10)

    # Connections, sizes, culling -----------------------------------------------------------

    def attach(self, name: str, connection_id: str, worker: int = 0) -> dict[str, Any]:
        """A page connects: its scrollback so far and the number of the last chunk in it
        (the page's live feed, subscribed before asking, skips chunks up to there)."""
        terminal = self.get(name)
        terminal.workers[connection_id] = worker
        terminal.touch()
        return {"scrollback": terminal.scrollback.text(), "seq": terminal.scrollback.seq}

    def detach(self, name: str, connection_id: str) -> None:
        terminal = self.terminals.get(name)
        if terminal is None:
            return
        terminal.workers.pop(connection_id, None)
        if terminal.sizes.pop(connection_id, None) is not None:
            self._fit(terminal)

    def resize(self, name: str, connection_id: str, rows: int, cols: int) -> None:
        """A page's size; the pty takes the smallest of its pages' sizes (as terminado does),
        so no page sees lines cut."""
        if not all(isinstance(n, int) and not isinstance(n, bool) and 0 < n < 10000 for n in (rows, cols)):
            raise APIError(400, f"set_size needs rows and columns from 1 to 9999, got {rows!r}, {cols!r}",
                           "Bad Request")
        terminal = self.get(name)
        terminal.sizes[connection_id] = (rows, cols)
        self._fit(terminal)

    @staticmethod
    def _fit(terminal: Terminal) -> None:
        if terminal.sizes and not terminal.closed:
            rows = min(size[0] for size in terminal.sizes.values())
            cols = min(size[1] for size in terminal.sizes.values())
            set_size(terminal.master, rows, cols)

    def prune_connections(self) -> None:
        """Forget the pages of web workers that died without detaching."""
        for terminal in list(self.terminals.values()):
            for connection_id, worker in list(terminal.workers.items()):
                if worker and not runtime.pid_alive(worker):
                    self.detach(terminal.name, connection_id)

    def cull_inactive(self) -> None:
        """Stop terminals with no input or output for longer than cull_inactive_timeout."""
        timeout = self.settings.terminals.cull_inactive_timeout
        if timeout <= 0:
            return
        now = utcnow()
        for terminal in list(self.terminals.values()):
            inactive = (now - terminal.last_activity).total_seconds()
            if inactive > timeout:
                log.info("culling terminal %s, inactive for %.0f s", terminal.name, inactive)
                gevent.spawn(self.end, terminal)

    def cull_forever(self) -> None:
        while True:
            gevent.sleep(self.settings.terminals.cull_interval)
            self.cull_inactive()
