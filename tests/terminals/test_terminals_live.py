"""Terminals end to end: a real shell on a real pty in the kernel host of a real `nbflask run`
(gevent), driven over the terminado websocket the way JupyterLab and Notebook 7 drive it."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest
from kernelapp import wait_gone
from live import TOKEN, start_flask, start_nbflask
from termws import TerminalSocket

pytestmark = pytest.mark.slow
SCROLLBACK = 8192
INPUT_BUFFER = 65536

# A full-screen program: curses in the alternate screen, drawing the size its pty has, again
# whenever that changes, until `q`. It asks the pty itself (as vim's self-pipe would let it):
# ncurses may miss a SIGWINCH that comes just before it waits for a key.
FULLSCREEN = r"""
import curses, os

def main(screen):
    screen.timeout(100)
    drawn = None
    while screen.getch() != ord("q"):
        size = os.get_terminal_size(0)
        if size != drawn:
            curses.resizeterm(size.lines, size.columns)
            screen.clear()  # a full repaint: the whole line is sent again
            screen.addstr(0, 0, f"size={size.lines}x{size.columns}")
            screen.refresh()
            drawn = size

curses.wrapper(main)
print("fullscreen-done")
"""

# A program that takes no input (the pty in cbreak mode: it blocks instead of dropping what is
# not read) until SIGUSR1, then reads up to END and says how many x it read.
NOT_READING = r"""
import os, signal, termios, tty

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
saved = termios.tcgetattr(0)
tty.setcbreak(0)
print("not-reading", flush=True)
signal.sigwait({signal.SIGUSR1})
data = b""
while not data.endswith(b"END"):
    data += os.read(0, 65536)
termios.tcsetattr(0, termios.TCSANOW, saved)
print(f"read-{data.count(b'x')}", flush=True)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("terminals")
    runtime = tmp / "runtime"
    runtime.mkdir(mode=0o700)
    (tmp / "fullscreen.py").write_text(FULLSCREEN)
    (tmp / "not_reading.py").write_text(NOT_READING)
    (tmp / "notebooks" / "sub").mkdir(parents=True)
    config = {"terminals": {"shell_command": ["bash", "--norc", "--noprofile"],
                            "env": {"PS1": "$ ", "EDITOR": "nano", "FULLSCREEN": str(tmp / "fullscreen.py"),
                                    "NOT_READING": str(tmp / "not_reading.py")},
                            "scrollback_bytes": SCROLLBACK, "input_buffer_bytes": INPUT_BUFFER}}
    live = start_nbflask(tmp, config, env={"NBFLASK_RUNTIME_DIR": str(runtime)})
    yield live
    live.stop()


@pytest.fixture
def api(server):
    return server.session()


@pytest.fixture
def terminal(server, api):
    name = api.post(server.url + "api/terminals").json()["name"]
    yield name
    api.delete(server.url + f"api/terminals/{name}")


def connect(server, name: str) -> TerminalSocket:
    return TerminalSocket(server.url, name, TOKEN)


def shell_pid(term: TerminalSocket) -> int:
    term.type("echo shell-pid-$$\r")
    return int(term.wait_for(r"shell-pid-(\d+)\r\n").group(1))


def test_setup_then_a_command_runs_in_the_store_root(server, terminal):
    with connect(server, terminal) as term:
        assert term.recv() == ["setup", {}]
        term.type("echo nbflask-$((6*7)); pwd; echo TERM=$TERM\r")
        term.wait_for(r"nbflask-42\r\n")
        term.wait_for(r"/notebooks\r\n")
        term.wait_for(r"TERM=xterm-256color")


def test_input_with_a_lone_surrogate_reaches_the_shell_and_keeps_the_terminal(server, terminal):
    """JavaScript strings may hold a lone surrogate (a paste cut inside an emoji); JSON carries
    it as \\ud83d. It is typed as U+FFFD, as a browser shows it, and the terminal carries on."""
    with connect(server, terminal) as term:
        term.type("echo 'cut-\ud83d-emoji'\r")
        term.wait_for("cut-\ufffd-emoji\r\n")
        term.type("echo still-$((6*7))\r")
        term.wait_for(r"still-42\r\n")


def test_resize_sets_the_pty_size(server, terminal):
    with connect(server, terminal) as term:
        term.resize(30, 100)
        term.type("stty size\r")
        term.wait_for(r"30 100\r\n")
        term.resize(12, 40)
        term.type("stty size\r")
        term.wait_for(r"12 40\r\n")


def test_a_full_screen_program_draws_at_the_pty_size_and_follows_resizes(server, terminal):
    with connect(server, terminal) as term:
        term.resize(30, 100)
        term.type(f"{sys.executable} $FULLSCREEN\r")
        term.wait_for(r"size=30x100")
        term.resize(20, 60)
        term.wait_for(r"size=20x60")
        term.type("q")
        term.wait_for(r"fullscreen-done")


def start_sleep(term: TerminalSocket, shell: int) -> psutil.Process:
    """Run `sleep 1000` in the shell; its process once it runs."""
    term.type("sleep 1000\r")
    deadline = time.monotonic() + 15
    while not (sleeps := [p for p in psutil.Process(shell).children() if p.name() == "sleep"]):
        assert time.monotonic() < deadline, "sleep never started"
        time.sleep(0.05)
    return sleeps[0]


def test_ctrl_c_interrupts_a_running_sleep(server, terminal):
    with connect(server, terminal) as term:
        shell = shell_pid(term)
        start_sleep(term, shell)
        term.type("\x03")
        term.type("echo status-$?\r")
        term.wait_for(r"status-130\r\n")
        assert psutil.pid_exists(shell)


def peak_memory(pid: int) -> int:
    """The most memory process `pid` ever had resident, in bytes (VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1)) * 1024


def test_a_big_paste_into_sleep_never_sits_whole_in_the_kernel_host(server, terminal):
    with connect(server, terminal) as term:
        shell = shell_pid(term)
        host = psutil.Process(shell).ppid()
        start_sleep(term, shell).kill()
        start_sleep(term, shell)  # the first sleep's host requests may have raised the peak
        before = peak_memory(host)
        term.type("x" * (4 << 20) + "\x03")  # the pty drops what `sleep` leaves unread
        term.type("echo pasted-$((6*6))\r")
        term.wait_for(r"pasted-36\r\n")
        assert peak_memory(host) - before < 3 << 20  # the whole paste, more than twice, before


def test_input_a_program_does_not_read_waits_within_the_bound_and_what_finds_no_room_is_refused_aloud(
        server, terminal):
    with connect(server, terminal) as term:
        shell = shell_pid(term)
        term.type(f"{sys.executable} $NOT_READING\r")
        term.wait_for(r"not-reading\r\n")
        paste = "x" * (32 << 20)
        term.type(paste)
        notice = term.wait_for(r"\[nbflask: (\d+) characters of input not sent: [^\]]+\]")
        taken = len(paste) - int(notice.group(1))
        assert INPUT_BUFFER <= taken <= INPUT_BUFFER + (64 << 10)  # the queue, and the pty's own buffer
        reader = next(p for p in psutil.Process(shell).children() if "python" in p.name())
        reader.send_signal(signal.SIGUSR1)
        term.type("END")
        assert int(term.wait_for(r"read-(\d+)\r\n").group(1)) == taken  # nothing taken was lost
        term.type("echo after-$((5*5))\r")
        term.wait_for(r"after-25\r\n")


def test_a_reconnecting_page_gets_the_scrollback_then_live_output(server, terminal):
    with connect(server, terminal) as term:
        shell = shell_pid(term)
        term.type("echo before-$((1+1))\r")
        term.wait_for(r"before-2\r\n")
    with connect(server, terminal) as again:
        assert again.recv() == ["setup", {}]
        again.recv()  # the scrollback, in one message
        assert "before-2\r\n" in again.output and f"shell-pid-{shell}" in again.output
        assert again.output.count("before-2\r\n") == 1
        again.type("echo after-$((2+2))\r")
        again.wait_for(r"after-4\r\n")
        assert shell_pid(again) == shell  # closing the last page left the shell running


def test_the_scrollback_is_bounded_and_keeps_the_newest(server, terminal):
    with connect(server, terminal) as term:
        term.type("for i in $(seq 1 3000); do echo line-$i; done; echo end-of-lines\r")
        term.wait_for(r"line-3000\r\nend-of-lines\r\n")
    with connect(server, terminal) as again:
        again.recv()
        again.recv()
        assert len(again.output) <= SCROLLBACK
        assert "line-3000\r\n" in again.output and "line-1\r\n" not in again.output


def test_two_pages_see_the_same_output_and_the_pty_takes_the_smaller_size(server, terminal):
    with connect(server, terminal) as first, connect(server, terminal) as second:
        first.resize(40, 120)
        second.resize(25, 90)
        first.type("echo from-first-$((3*3))\r")
        first.wait_for(r"from-first-9\r\n")
        second.wait_for(r"from-first-9\r\n")
        second.type("stty size\r")
        first.wait_for(r"25 90\r\n")
        second.wait_for(r"25 90\r\n")
    with connect(server, terminal) as alone:  # the others are gone: its own size counts
        alone.resize(40, 120)
        # A closed page leaves once the server has read its close, which may come after this
        # page's size: the pty is resized again then. Ask until the shell sees it.
        deadline = time.monotonic() + 30
        while True:
            alone.type("stty size\r")
            size = alone.wait_for(r"stty size\r\n(?:\x1b\[\?2004l)?\r?(\d+ \d+)\r\n", timeout=30)
            if size.group(1) == "40 120" or time.monotonic() > deadline:
                break
            alone.output = alone.output[size.end():]
        assert size.group(1) == "40 120", alone.output


def test_delete_kills_the_shell_and_its_jobs_and_tells_the_pages(server, api):
    name = api.post(server.url + "api/terminals").json()["name"]
    with connect(server, name) as term:
        shell = shell_pid(term)
        term.type("sleep 1001 & echo job-$!\r")
        job = int(term.wait_for(r"job-(\d+)\r\n").group(1))
        deadline = time.monotonic() + 15
        while psutil.Process(job).name() != "sleep":
            assert time.monotonic() < deadline, "the job never became sleep"
            time.sleep(0.05)
        assert os.getpgid(job) != os.getpgid(shell)  # job control: its own group, same session
        assert api.delete(server.url + f"api/terminals/{name}").status_code == 204
        term.wait_closed()
        assert ["disconnect", 1] in term.messages
    assert wait_gone(shell) and wait_gone(job)
    assert api.get(server.url + f"api/terminals/{name}").status_code == 404


def test_a_shell_that_exits_ends_its_terminal(server, api):
    name = api.post(server.url + "api/terminals").json()["name"]
    with connect(server, name) as term:
        term.recv()
        term.type("exit\r")
        term.wait_closed()
        assert ["disconnect", 1] in term.messages
    deadline = time.monotonic() + 15
    while api.get(server.url + f"api/terminals/{name}").status_code != 404:
        assert time.monotonic() < deadline, "the ended terminal is still listed"
        time.sleep(0.1)


def test_a_terminal_starts_in_the_folder_asked_for_with_the_configured_environment(server, api):
    name = api.post(server.url + "api/terminals", json={"cwd": "sub"}).json()["name"]
    try:
        with connect(server, name) as term:
            term.type("pwd; echo editor=$EDITOR token=${NBFLASK_AUTH_TOKEN:-none}\r")
            term.wait_for(r"/notebooks/sub\r\n")
            term.wait_for(r"editor=nano token=none\r\n")
    finally:
        api.delete(server.url + f"api/terminals/{name}")


def test_terminals_work_under_flask_run_threads_too(tmp_path):
    """`flask --app nbflask run`: real threads and plain ZeroMQ instead of gevent."""
    config = {"terminals": {"shell_command": ["bash", "--norc", "--noprofile"]}}
    with start_flask(tmp_path, config) as live:
        name = live.session().post(live.url + "api/terminals").json()["name"]
        with TerminalSocket(live.url, name, TOKEN) as term:
            term.resize(20, 70)
            term.type("echo threads-$((6*7)); stty size\r")
            term.wait_for(r"threads-42\r\n20 70\r\n")
