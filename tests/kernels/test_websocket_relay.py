"""The kernel websocket through a real `nbflask run` (gevent, plain TCP), both protocols."""

from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest
import websocket
from kernelapp import PYTHON, install_spec, pid_alive, wait_gone
from kernelws import SLEEP, V1, KernelSocket, replies_to, sleeping
from live import TOKEN, start_nbflask

pytestmark = [pytest.mark.slow, pytest.mark.kernel_transports]
PROTOCOLS = pytest.mark.parametrize("v1", [False, True], ids=["legacy", "v1"])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("relay")
    runtime = tmp / "runtime"
    runtime.mkdir(mode=0o700)
    argv = [PYTHON, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    install_spec(tmp / "jupyter", "messaging", argv, interrupt_mode="message",
                 env={"NBFLASK_SPEC_VAR": "from-spec"})
    (tmp / "notebooks" / "sub").mkdir(parents=True)
    live = start_nbflask(tmp, {"kernels": {"restart_limit": 1}},
                         env={"NBFLASK_RUNTIME_DIR": str(runtime), "JUPYTER_PATH": str(tmp / "jupyter")})
    yield live
    live.stop()


@pytest.fixture
def api(server):
    return server.session()


@pytest.fixture
def kernel(server, api):
    model = api.post(server.url + "api/kernels", json={"name": "python3"}).json()
    yield model["id"]
    api.delete(server.url + f"api/kernels/{model['id']}")


def wait_idle(server, api, kernel_id: str) -> None:
    deadline = time.monotonic() + 30
    while api.get(server.url + f"api/kernels/{kernel_id}").json()["execution_state"] != "idle":
        assert time.monotonic() < deadline, "the kernel did not come back"
        time.sleep(0.1)


def connect(server, kernel_id, **kwargs) -> KernelSocket:
    return KernelSocket(server.url, kernel_id, TOKEN, **kwargs)


@PROTOCOLS
def test_execute_streams_display_data_results_and_errors(server, kernel, v1):
    with connect(server, kernel, v1=v1) as ks:
        assert ks.subprotocol == (V1 if v1 else None)
        run = ks.execute(
            "import sys\nfrom IPython.display import display, HTML\n"
            "print('to stdout'); print('to stderr', file=sys.stderr)\ndisplay(HTML('<b>hi</b>'))\n6 * 7"
        )
        assert run.reply["content"]["status"] == "ok"
        assert run.stream("stdout") == "to stdout\n" and run.stream("stderr") == "to stderr\n"
        assert run.of_type("display_data")[0]["content"]["data"]["text/html"] == "<b>hi</b>"
        assert run.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "42"
        failed = ks.execute("1 / 0")
        assert failed.reply["content"]["status"] == "error"
        assert failed.of_type("error")[0]["content"]["ename"] == "ZeroDivisionError"


@PROTOCOLS
def test_input_round_trip_on_stdin(server, kernel, v1):
    with connect(server, kernel, v1=v1) as ks:
        run = ks.execute("name = input('Name? ')\nprint('hello', name)", stdin="Ada")
        assert run.stream("stdout") == "hello Ada\n"


@PROTOCOLS
def test_binary_buffers_pass_both_ways(server, kernel, v1):
    with connect(server, kernel, v1=v1) as ks:
        ks.execute("from ipykernel.comm import Comm\n"
                   "def opened(comm, msg):\n"
                   "    comm.on_msg(lambda m: comm.send({'n': len(m['buffers'][0])},\n"
                   "                                    buffers=[b'\\x00\\xffback']))\n"
                   "get_ipython().kernel.comm_manager.register_target('echo', opened)")
        ks.send("shell", "comm_open", {"comm_id": "c1", "target_name": "echo", "data": {}})
        if v1:
            ks.send("shell", "comm_msg", {"comm_id": "c1", "data": {}}, buffers=[b"\x01\x02\x03"])
        else:
            import json
            import struct
            msg = {"header": {"msg_id": "m1", "msg_type": "comm_msg", "session": ks.session_id,
                              "username": "t", "date": "", "version": "5.3"},
                   "parent_header": {}, "metadata": {}, "content": {"comm_id": "c1", "data": {}},
                   "channel": "shell"}
            body = json.dumps(msg).encode()
            ks.send_raw(struct.pack("!3I", 2, 12, 12 + len(body)) + body + b"\x01\x02\x03")
        echo = ks.wait_for(lambda m: m["header"]["msg_type"] == "comm_msg" and m["channel"] == "iopub")
        assert echo["content"]["data"] == {"n": 3}
        assert [bytes(b) for b in echo["buffers"]] == [b"\x00\xffback"]


def test_interrupt_stops_a_sleeping_cell(server, api, kernel):
    with connect(server, kernel) as ks:
        msg_id = ks.send("shell", "execute_request", {"code": SLEEP})
        ks.wait_for(sleeping(msg_id))
        assert api.post(server.url + f"api/kernels/{kernel}/interrupt").status_code == 204
        reply = ks.wait_for(replies_to(msg_id), timeout=20)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"


def test_message_interrupt_mode_env_and_working_directory_from_the_spec(server, api):
    model = api.post(server.url + "api/kernels", json={"name": "messaging", "path": "sub/nb.ipynb"}).json()
    try:
        with connect(server, model["id"]) as ks:
            run = ks.execute("import os\nprint(os.environ['NBFLASK_SPEC_VAR'], os.getcwd().split('/')[-1])")
            assert run.stream("stdout") == "from-spec sub\n"
            msg_id = ks.send("shell", "execute_request", {"code": SLEEP})
            ks.wait_for(sleeping(msg_id))
            assert api.post(server.url + f"api/kernels/{model['id']}/interrupt").status_code == 204
            reply = ks.wait_for(replies_to(msg_id))
            assert reply["content"]["ename"] == "KeyboardInterrupt"
    finally:
        api.delete(server.url + f"api/kernels/{model['id']}")


def test_two_websockets_both_see_iopub_and_are_counted(server, api, kernel):
    with connect(server, kernel) as first, connect(server, kernel, v1=True) as second:
        first.pending.append(first.recv())  # each relays once attached to the kernel
        second.pending.append(second.recv())
        assert api.get(server.url + f"api/kernels/{kernel}").json()["connections"] == 2
        run = first.send("shell", "execute_request", {"code": "print('shared output')", "silent": False})
        seen = second.wait_for(lambda m: m["header"]["msg_type"] == "stream"
                               and m["parent_header"].get("msg_id") == run)
        assert seen["content"]["text"] == "shared output\n"
    deadline = time.monotonic() + 10
    while api.get(server.url + f"api/kernels/{kernel}").json()["connections"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api.get(server.url + f"api/kernels/{kernel}").json()["connections"] == 0


def test_the_websockets_of_a_worker_share_one_iopub_subscription(tmp_path):
    """Each web worker subscribes once to a kernel's iopub, for all its websockets on it: the
    kernel has two iopub peers (the kernel host and the worker) for three websockets, and
    each websocket still gets every message, once. The worker's goes with the last one."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    live = start_nbflask(tmp_path, env={"NBFLASK_RUNTIME_DIR": str(runtime)})
    try:
        api = live.session()
        kernel_id = api.post(live.url + "api/kernels", json={"name": "python3"}).json()["id"]
        info = json.loads((runtime / f"kernel-{kernel_id}.json").read_text())
        [process] = [child for child in psutil.Process(live.proc.pid).children(recursive=True)
                     if "ipykernel" in " ".join(child.cmdline())]

        def subscribers() -> int:
            if info["transport"] == "tcp":
                return sum(1 for c in process.net_connections(kind="tcp")
                           if c.laddr.port == info["iopub_port"] and c.status == psutil.CONN_ESTABLISHED)
            path = f"{info['ip']}-{info['iopub_port']}"  # accepted unix sockets carry its path
            return sum(1 for c in process.net_connections(kind="unix") if c.laddr == path) - 1

        sockets = [connect(live, kernel_id), connect(live, kernel_id, v1=True), connect(live, kernel_id)]
        try:
            for ks in sockets:
                ks.pending.append(ks.recv())  # relaying
            assert subscribers() == 2
            run = sockets[0].send("shell", "execute_request", {"code": "print('to all')", "silent": False})
            for ks in sockets:
                ks.wait_for(lambda m: m["header"]["msg_type"] == "status"
                            and m["parent_header"].get("msg_id") == run
                            and m["content"]["execution_state"] == "idle")
                streams = [m for m in ks.pending if m["parent_header"].get("msg_id") == run
                           and m["header"]["msg_type"] == "stream"]
                assert [m["content"]["text"] for m in streams] == ["to all\n"]
        finally:
            for ks in sockets:
                ks.close()
        deadline = time.monotonic() + 10
        while subscribers() > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert subscribers() == 1  # the host's own, which records
    finally:
        live.stop()


def test_a_second_connection_of_the_same_session_replaces_the_first(server, kernel):
    stale = connect(server, kernel, session_id="same-session")
    stale.recv()  # relaying: it is attached to the kernel
    fresh = connect(server, kernel, session_id="same-session")
    try:
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                stale.recv(timeout=10)
        assert fresh.execute("print(1)").stream("stdout") == "1\n"
    finally:
        stale.close()
        fresh.close()


@PROTOCOLS
def test_malformed_frames_are_dropped_and_the_connection_kept(server, kernel, v1):
    with connect(server, kernel, v1=v1) as ks:
        for junk in ("not json", b"\x01\x02", '{"channel": "iopub", "header": {"msg_type": "x"}}',
                     b"\x03" + b"\x00" * 7 + b"\xff" * 24):
            ks.send_raw(junk)
        assert ks.execute("print('still here')").stream("stdout") == "still here\n"
    assert "dropped a client message" in server.log()


def test_forged_kernel_messages_never_reach_the_browser(server, kernel):
    forged = ("k = get_ipython().kernel\n"
              "k.iopub_socket.send_multipart([b'stream.stdout', b'<IDS|MSG>', b'0' * 64,"
              " b'{\"msg_type\": \"stream\", \"msg_id\": \"forged\", \"session\": \"x\"}',"
              " b'{}', b'{}', b'{\"name\": \"stdout\", \"text\": \"FORGED\"}'])")
    with connect(server, kernel) as ks:
        ks.execute(forged)
        after = ks.execute("print('genuine')")
        assert after.stream("stdout") == "genuine\n"
        assert not any("FORGED" in str(m["content"]) for m in after.iopub + ks.pending)
    assert "invalid message signature" in server.log()


def test_fifty_megabytes_stream_intact_over_plain_tcp_gevent(server, kernel):
    chunk = 1 << 20
    with connect(server, kernel, v1=True, timeout=120) as ks:
        run = ks.execute(f"import sys\nfor i in range(50): sys.stdout.write(chr(97 + i % 26) * {chunk})",
                         timeout=120)
        text = run.stream("stdout")
    assert len(text) == 50 * chunk
    assert text[:chunk] == "a" * chunk and text[-chunk:] == chr(97 + 49 % 26) * chunk


def test_a_crashed_kernel_is_restarted_and_says_why(server, api, kernel):
    with connect(server, kernel) as ks:
        first_pid = int(ks.execute("import os; print(os.getpid())").stream("stdout"))
        ks.send("shell", "execute_request", {"code": "import os; os._exit(1)"})
        status = ks.wait_for(lambda m: m["header"]["msg_type"] == "status"
                             and m["content"]["execution_state"] == "restarting")
        assert "exited with code 1" in status["content"]["reason"]
        wait_idle(server, api, kernel)
        second_pid = int(ks.execute("import os; print(os.getpid())").stream("stdout"))
        assert second_pid != first_pid and not pid_alive(first_pid)
        assert "exited with code 1" in api.get(server.url + f"api/kernels/{kernel}").json()["reason"]


def test_sigkill_then_restart_limit_leaves_the_kernel_dead_with_a_reason(server, api, kernel):
    with connect(server, kernel) as ks:
        pid = int(ks.execute("import os; print(os.getpid())").stream("stdout"))
        os.kill(pid, signal.SIGKILL)
        restarting = ks.wait_for(lambda m: m["header"]["msg_type"] == "status"
                                 and m["content"]["execution_state"] == "restarting")
        assert "SIGKILL" in restarting["content"]["reason"]
        wait_idle(server, api, kernel)
        ks.send("shell", "execute_request", {"code": "import os; os._exit(7)"})
        dead = ks.wait_for(lambda m: m["header"]["msg_type"] == "status"
                           and m["content"]["execution_state"] == "dead")
        assert "exited with code 7" in dead["content"]["reason"]
    model = api.get(server.url + f"api/kernels/{kernel}").json()
    assert model["execution_state"] == "dead" and "code 7" in model["reason"]
    assert api.post(server.url + f"api/kernels/{kernel}/restart").json()["execution_state"] == "idle"


@PROTOCOLS
def test_output_right_after_a_restart_is_not_lost(server, api, kernel, v1):
    with connect(server, kernel, v1=v1) as ks:
        for attempt in range(3):
            assert api.post(server.url + f"api/kernels/{kernel}/restart").status_code == 200
            run = ks.execute(f"print('after restart {attempt}')")
            assert run.stream("stdout") == f"after restart {attempt}\n"


def test_shutting_the_kernel_down_closes_its_websockets(server, api):
    kernel_id = api.post(server.url + "api/kernels").json()["id"]
    with connect(server, kernel_id) as ks:
        pid = int(ks.execute("import os; print(os.getpid())").stream("stdout"))
        assert api.delete(server.url + f"api/kernels/{kernel_id}").status_code == 204
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            while True:
                ks.recv(timeout=10)
    assert wait_gone(pid)


def test_websocket_errors_are_plain_http(server):
    session = server.session()
    plain = session.get(server.url + "api/kernels/nope/channels")
    assert plain.status_code == 400
    assert "only accepts websocket upgrades" in plain.json()["message"]
    with pytest.raises(websocket.WebSocketBadStatusException) as missing:
        connect(server, "no-such-kernel")
    assert missing.value.status_code == 404
    with pytest.raises(websocket.WebSocketBadStatusException) as anonymous:
        websocket.create_connection(server.url.replace("http", "ws") + "api/kernels/x/channels", timeout=10)
    assert anonymous.value.status_code == 403


def test_kernels_under_a_url_prefix(tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    with start_nbflask(tmp_path, {"server": {"base_url": "/ipython/"}},
                       env={"NBFLASK_RUNTIME_DIR": str(runtime)}) as prefixed:
        assert prefixed.url.endswith("/ipython/")
        started = prefixed.session().post(prefixed.url + "api/kernels")
        assert started.headers["Location"].startswith("/ipython/api/kernels/")
        with connect(prefixed, started.json()["id"], v1=True) as ks:
            assert ks.execute("print('prefixed')").stream("stdout") == "prefixed\n"


def test_news_of_a_kernel_whose_id_extends_ours_is_not_ours(server, api):
    """Host events are published by kernel id, and ZeroMQ subscribes by prefix: shutting down
    kernel `a-b-c-d-ef` must not close the websocket of kernel `a-b-c-d-e`."""
    ids = ["nb-flask-prefix-kernel-e", "nb-flask-prefix-kernel-ef"]
    for kernel_id in ids:
        assert api.post(server.url + "api/kernels", json={"kernel_id": kernel_id}).status_code == 201
    try:
        with connect(server, ids[0]) as ks, connect(server, ids[1]) as other:
            marker = ks.send("shell", "kernel_info_request", {})
            ks.wait_for(replies_to(marker), timeout=90)
            assert api.delete(server.url + f"api/kernels/{ids[1]}").status_code == 204
            with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
                while True:  # until the news of the shutdown closes the other kernel's websocket
                    other.recv(timeout=10)
            marker = ks.send("shell", "kernel_info_request", {})
            ks.wait_for(replies_to(marker))  # still connected
    finally:
        api.delete(server.url + f"api/kernels/{ids[0]}")
