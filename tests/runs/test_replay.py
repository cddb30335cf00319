"""Replay on reconnect: a client back with its session_id gets what its kernel said meanwhile."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid

import pytest
from kernelws import KernelSocket
from live import fresh_request, start_gunicorn, start_nbflask, workers_serving
from waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.kernel_transports]

COUNT_SLOWLY = "import time\nfor i in range(8):\n    print(f'line {i}', flush=True)\n    time.sleep(0.4)"
LINES = "".join(f"line {i}\n" for i in range(8))
COUNT_FAST = "import time\nfor i in range(300):\n    print(f'line {i}', flush=True)\n    time.sleep(0.01)"
FAST_LINES = "".join(f"line {i}\n" for i in range(300))


def stdout_of(messages, msg_id: str, name: str = "stdout") -> str:
    return "".join(m["content"]["text"] for m in messages
                   if m["header"]["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id
                   and m["content"]["name"] == name)


def is_idle_after(msg_id: str):
    return lambda m: (m["header"]["msg_type"] == "status" and m["parent_header"].get("msg_id") == msg_id
                      and m["content"]["execution_state"] == "idle")


def run_away_and_back(server, kernel_id: str, *, session_id: str, v1: bool, back_as: str | None = None):
    """Start COUNT_SLOWLY, leave after its first line, come back when it is done; returns the
    messages seen before leaving and after coming back, and the request's id."""
    with KernelSocket(server.url, kernel_id, server.token, session_id=session_id, v1=v1) as ws:
        msg_id = ws.send("shell", "execute_request", {"code": COUNT_SLOWLY, "silent": False})
        first = ws.wait_for(lambda m: m["header"]["msg_type"] == "stream"
                                and m["parent_header"].get("msg_id") == msg_id)
        before = [*[m for m in ws.pending if m["channel"] == "iopub"], first]
    run = server.url + f"api/kernels/{kernel_id}/runs/{msg_id}"
    wait_until(lambda: server.session().get(run, timeout=30).json()["done"], what="the run's end")
    with KernelSocket(server.url, kernel_id, server.token, session_id=back_as or session_id, v1=v1) as ws:
        marker = ws.send("shell", "execute_request", {"code": "pass", "silent": False})
        ws.wait_for(is_idle_after(marker))  # the kernel runs requests in order: all is said
        after = [m for m in ws.pending if m["channel"] == "iopub"]
    return before, after, msg_id


@pytest.mark.parametrize("v1", [False, True], ids=["legacy", "v1"])
def test_a_client_back_with_its_session_gets_what_it_missed_once_and_in_order(tmp_path, v1):
    with start_nbflask(tmp_path) as server:
        kernel = server.session().post(server.url + "api/kernels", json={}, timeout=90).json()
        before, after, msg_id = run_away_and_back(server, kernel["id"], session_id=uuid.uuid4().hex, v1=v1)
        assert stdout_of(before, msg_id) + stdout_of(after, msg_id) == LINES
        assert stdout_of(before, msg_id) == "line 0\n"
        ids = [m["header"]["msg_id"] for m in before + after]
        assert len(ids) == len(set(ids))


def test_a_new_session_gets_no_replay(tmp_path):
    with start_nbflask(tmp_path) as server:
        kernel = server.session().post(server.url + "api/kernels", json={}, timeout=90).json()
        before, after, msg_id = run_away_and_back(server, kernel["id"], session_id=uuid.uuid4().hex,
                                                  v1=True, back_as=uuid.uuid4().hex)
        assert stdout_of(after, msg_id) == ""


def test_replay_across_gunicorn_workers(tmp_path):
    """Reconnects land on whichever worker; the buffer lives in the kernel host."""
    with start_gunicorn(tmp_path, workers=2) as server:
        kernel = server.session().post(server.url + "api/kernels", json={}, timeout=90).json()
        for _ in range(2):
            before, after, msg_id = run_away_and_back(server, kernel["id"], session_id=uuid.uuid4().hex,
                                                      v1=False)
            assert stdout_of(before, msg_id) + stdout_of(after, msg_id) == LINES


def test_a_bounded_buffer_keeps_the_newest_and_says_what_it_dropped(tmp_path):
    with start_nbflask(tmp_path, {"kernels": {"replay_buffer_bytes": 9000}}) as server:
        kernel = server.session().post(server.url + "api/kernels", json={}, timeout=90).json()
        before, after, msg_id = run_away_and_back(server, kernel["id"], session_id=uuid.uuid4().hex, v1=True)
        gap = [m for m in after if m["header"]["msg_type"] == "nbflask_replay_gap"]
        assert len(gap) == 1 and gap[0]["content"]["dropped"] > 0
        assert after[0] is gap[0]
        seen = stdout_of(before, msg_id) + stdout_of(after, msg_id)
        assert seen.endswith("line 7\n") and seen != LINES
        assert LINES.endswith(stdout_of(after, msg_id))
        told = stdout_of(after, msg_id, "stderr")  # in the run's output, where JupyterLab shows it
        dropped = gap[0]["content"]["dropped"]
        assert told.startswith(f"[nbflask: {dropped} output messages of this kernel were lost")


def test_a_session_back_while_its_old_connection_still_streams_sees_each_line_once(tmp_path):
    """The gateway (or a browser) reconnects before its old websocket is gone: the old one keeps
    delivering until it is replaced, the new one subscribed meanwhile; together: each once."""
    with start_nbflask(tmp_path) as server:
        kernel = server.session().post(server.url + "api/kernels", json={}, timeout=90).json()
        session_id = uuid.uuid4().hex
        old = KernelSocket(server.url, kernel["id"], server.token, session_id=session_id)
        msg_id = old.send("shell", "execute_request", {"code": COUNT_FAST, "silent": False})
        old_seen: list = []

        def read_old() -> None:
            try:
                while True:
                    old_seen.append(old.recv(timeout=30))
            except (ConnectionError, OSError, TimeoutError, Exception):
                return

        reader = threading.Thread(target=read_old)
        reader.start()
        while "line 20\n" not in stdout_of(list(old_seen), msg_id):
            time.sleep(0.05)
        with KernelSocket(server.url, kernel["id"], server.token, session_id=session_id) as new:
            new.wait_for(is_idle_after(msg_id))
            marker = new.send("shell", "execute_request", {"code": "pass", "silent": False})
            new.wait_for(is_idle_after(marker))
            new_seen = [m for m in new.pending if m["channel"] == "iopub"]
        reader.join(30)
        old.close()
        assert stdout_of(old_seen, msg_id) + stdout_of(new_seen, msg_id) == FAST_LINES
        ids = [m["header"]["msg_id"] for m in old_seen + new_seen if m["channel"] == "iopub"]
        assert len(ids) == len(set(ids))


def test_replay_off_means_no_replay_and_no_notice(tmp_path):
    with start_nbflask(tmp_path, {"kernels": {"replay_buffer_bytes": 0}}) as server:
        kernel = server.session().post(server.url + "api/kernels", json={}, timeout=90).json()
        before, after, msg_id = run_away_and_back(server, kernel["id"], session_id=uuid.uuid4().hex, v1=True)
        assert stdout_of(after, msg_id) == ""
        assert not [m for m in after if m["header"]["msg_type"] == "nbflask_replay_gap"]


def gated(gate, then: str = "print('through', flush=True)") -> str:
    """Code that runs until the test creates the file `gate`, then runs `then`."""
    return f"import os, time\nwhile not os.path.exists({str(gate)!r}):\n    time.sleep(0.01)\n{then}"


def leave_while_running(server, kernel_id: str, session_id: str, code: str) -> str:
    """Send `code` and leave once the kernel runs it; returns the request's id."""
    with KernelSocket(server.url, kernel_id, server.token, session_id=session_id) as ws:
        msg_id = ws.send("shell", "execute_request", {"code": code, "silent": False, "allow_stdin": True})
        ws.wait_for(lambda m: m["header"]["msg_type"] == "execute_input"
                    and m["parent_header"].get("msg_id") == msg_id)
    return msg_id


def ready_socket(server, kernel_id: str, session_id: str, sock=None) -> KernelSocket:
    """A connection of the session (on TCP connection `sock`, if given), past its replay and
    subscribed: a request of its own was answered (on control, which a busy kernel answers too)."""
    ws = KernelSocket(server.url, kernel_id, server.token, session_id=session_id, sock=sock)
    asked = ws.send("control", "kernel_info_request", {})
    ws.wait_for(lambda m: m["channel"] == "control" and m["parent_header"].get("msg_id") == asked)
    return ws


def finish(ws: KernelSocket, msg_id: str) -> list:
    """Everything the connection gets until the run `msg_id` has replied and gone idle, and a
    later run has too (so a second copy of anything would have come by then)."""
    reply = ws.wait_for(lambda m: m["channel"] == "shell" and m["parent_header"].get("msg_id") == msg_id,
                        timeout=20)
    idle = ws.wait_for(is_idle_after(msg_id), timeout=20)
    marker = ws.send("shell", "execute_request", {"code": "pass", "silent": False})
    ws.wait_for(is_idle_after(marker))
    return [reply, idle, *ws.pending]


def replies_to_run(messages, msg_id: str) -> list:
    return [m for m in messages if m["channel"] == "shell" and m["parent_header"].get("msg_id") == msg_id]


@contextlib.contextmanager
def away_while_running(tmp_path, then: str = "print('through', flush=True)"):
    """A server whose kernel runs a cell (gated: it goes on to `then` once the test creates the
    gate) sent by a session that has left: `(server, kernel_id, session_id, msg_id, gate)`."""
    gate = tmp_path / "gate"
    with start_nbflask(tmp_path) as server:
        kernel_id = server.session().post(server.url + "api/kernels", json={}, timeout=90).json()["id"]
        session_id = uuid.uuid4().hex
        msg_id = leave_while_running(server, kernel_id, session_id, gated(gate, then))
        yield server, kernel_id, session_id, msg_id, gate


def assert_answered_once(seen, msg_id: str, stdout: str) -> None:
    reply = replies_to_run(seen, msg_id)
    assert len(reply) == 1 and reply[0]["content"]["status"] == "ok"
    assert stdout_of(seen, msg_id) == stdout


def test_the_reply_of_a_cell_run_before_a_blip_reaches_the_session_back_while_it_runs(tmp_path):
    """JupyterLab's cell stays [*] forever without its execute_reply: the kernel sends it to the
    connection that asked, which was gone; the session's new connection gets it, once."""
    with away_while_running(tmp_path) as (server, kernel_id, session_id, msg_id, gate):
        with ready_socket(server, kernel_id, session_id) as ws:
            gate.touch()
            seen = finish(ws, msg_id)
    assert_answered_once(seen, msg_id, "through\n")


def test_the_reply_that_came_while_the_session_was_away_is_kept_for_it(tmp_path):
    with away_while_running(tmp_path) as (server, kernel_id, session_id, msg_id, gate):
        with ready_socket(server, kernel_id, uuid.uuid4().hex) as other:  # another session looks on
            gate.touch()
            other.wait_for(is_idle_after(msg_id))
        with ready_socket(server, kernel_id, session_id) as ws:
            seen = finish(ws, msg_id)
    assert_answered_once(seen, msg_id, "through\n")


def test_an_input_request_made_after_a_blip_reaches_the_session_back(tmp_path):
    then = "print('hello', input('name? '), flush=True)"
    with away_while_running(tmp_path, then) as (server, kernel_id, session_id, msg_id, gate):
        with ready_socket(server, kernel_id, session_id) as ws:
            gate.touch()
            request = ws.wait_for(lambda m: m["channel"] == "stdin", timeout=20)
            assert request["content"]["prompt"] == "name? "
            ws.send("stdin", "input_reply", {"value": "blip"}, parent=request["header"])
            seen = finish(ws, msg_id)
    assert_answered_once(seen, msg_id, "hello blip\n")


def worker_of(server, sock: socket.socket) -> int | None:
    """The gunicorn worker that accepted TCP connection `sock`, once one has."""
    import psutil

    port = sock.getsockname()[1]
    for pid in workers_serving(server.proc.pid, server.port):
        if any(c.raddr and c.raddr.port == port for c in psutil.Process(pid).net_connections(kind="tcp")):
            return pid
    return None


def connection_to_another_worker(server, worker: int) -> socket.socket:
    """A TCP connection to the server that a worker other than `worker` accepted."""
    for _ in range(200):  # each connection goes to whichever worker accepts first
        sock = socket.create_connection(("127.0.0.1", server.port))
        accepted = None
        while accepted is None:
            accepted = worker_of(server, sock)
        if accepted != worker:
            return sock
        sock.close()
    raise AssertionError(f"every connection went to worker {worker}")


def test_the_reply_of_a_cell_run_before_a_blip_reaches_the_session_back_on_another_worker(tmp_path):
    """The relay that sent the request lives in one gunicorn worker, the session comes back
    through another: the reply goes through the kernel host."""
    gate = tmp_path / "gate"
    with start_gunicorn(tmp_path, workers=2) as server:
        kernel_id = fresh_request("POST", server.url + "api/kernels").json()["id"]
        session_id = uuid.uuid4().hex
        with ready_socket(server, kernel_id, session_id) as first:
            (asked_by,) = workers_serving(server.proc.pid, server.port)
            msg_id = first.send("shell", "execute_request", {"code": gated(gate), "silent": False})
            first.wait_for(lambda m: m["header"]["msg_type"] == "execute_input"
                           and m["parent_header"].get("msg_id") == msg_id)
        elsewhere = connection_to_another_worker(server, asked_by)
        with ready_socket(server, kernel_id, session_id, elsewhere) as ws:
            gate.touch()
            seen = finish(ws, msg_id)
        assert_answered_once(seen, msg_id, "through\n")
