"""A websocket client that stops reading is closed once its backlog passes
`server.websocket_send_buffer`; the server's memory stays bounded and the kernel's other
clients get every byte. Under gevent (`nbflask run`) and real threads (`flask run`)."""

from __future__ import annotations

import socket
import struct
import threading
import time
import uuid

import psutil
import pytest
import websocket
from kernelws import V1, KernelSocket, v1_unpack
from live import TOKEN, start_flask, start_nbflask

from nbflask.relays.kernel import LAST_WRITES
from nbflask.websocket import SLOW_CLIENT, SLOW_CLIENT_REASON

pytestmark = pytest.mark.slow

MIB = 1 << 20
LIMIT = 16 * MIB
CHUNKS = 160  # MiB printed: ten times the limit, so an unbounded backlog shows in the RSS


def printing(chunks: int) -> str:
    """Code printing `chunks` MiB, paced so that a client that keeps reading keeps up."""
    return ("import sys, time\n"
            f"for i in range({chunks}):\n"
            f"    sys.stdout.write('x' * {MIB}); sys.stdout.flush(); time.sleep(0.02)")


PRINT = printing(CHUNKS)


@pytest.fixture(params=["gevent", "threads"])
def server(request, tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    start = start_flask if request.param == "threads" else start_nbflask
    live = start(tmp_path, {"server": {"websocket_send_buffer": LIMIT}},
                 env={"NBFLASK_RUNTIME_DIR": str(runtime)})
    yield live
    live.stop()


class PeakRSS:
    """The largest resident size a process reaches while sampled (the sampling is not timed)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        while not self.stopped.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> int:
        self.stopped.set()
        self.thread.join()
        return self.peak


def stdout_bytes_of(ks: KernelSocket, code: str) -> int:
    """Run `code`, counting its stdout (not keeping it) until the reply and idle status."""
    msg_id = ks.send("shell", "execute_request", {"code": code, "silent": False})
    received, replied, idle = 0, False, False
    while not (replied and idle):
        message = ks.recv(timeout=120)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["channel"] == "shell":
            replied = True
        elif message["header"]["msg_type"] == "stream":
            received += len(message["content"]["text"])
        elif message["header"]["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            idle = True
    return received


def close_frame(ws: websocket.WebSocket) -> tuple[int, str]:
    """Read what the server sent until its close frame: (code, reason)."""
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return struct.unpack("!H", data[:2])[0], data[2:].decode()


@pytest.fixture
def kernel_id(server) -> str:
    return server.session().post(server.url + "api/kernels").json()["id"]


def stalled_client(server, kernel_id: str) -> websocket.WebSocket:
    """A v1 client of the kernel with a tiny receive buffer, for a test to stop reading."""
    url = server.url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels?token={TOKEN}"
    return websocket.create_connection(url, subprotocols=[V1], timeout=120, skip_utf8_validation=True,
                                       sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])


def test_a_client_that_does_not_read_is_closed_and_the_others_get_everything(server, kernel_id):
    with KernelSocket(server.url, kernel_id, TOKEN, v1=True, timeout=120) as reader:
        assert stdout_bytes_of(reader, "print('warm')") == len("warm\n")
        stalled = stalled_client(server, kernel_id)
        try:
            stalled.recv_data()  # relaying (its iopub confirmed); from here on it reads nothing
            rss = PeakRSS(server.proc.pid)
            baseline = rss.peak
            received: list[int] = []
            printing = threading.Thread(target=lambda: received.append(stdout_bytes_of(reader, PRINT)))
            printing.start()
            while "reads too slowly" not in server.log() and printing.is_alive():
                printing.join(0.1)
            # once closed, it reads again (as a slow client would): the close frame is there
            assert close_frame(stalled) == (SLOW_CLIENT, SLOW_CLIENT_REASON)
            printing.join()
            growth = rss.stop() - baseline
            assert received == [CHUNKS * MIB]
            assert growth < 5 * LIMIT, f"server grew by {growth / MIB:.0f} MiB for {CHUNKS} MiB printed"
        finally:
            stalled.close()
        assert stdout_bytes_of(reader, "print('still here')") == len("still here\n")


def test_closing_a_slow_client_holds_up_no_other_client_of_its_kernel(server, kernel_id):
    """Under gevent a worker's clients of a kernel share one iopub feed: the slow one's close
    must not make the feed wait for its backlog to drain (up to 30 s, then the server gives up
    on it and logs so), or every other client of the kernel waits as long."""
    chunks = 3 * LIMIT // MIB
    burst = printing(chunks)
    with KernelSocket(server.url, kernel_id, TOKEN, v1=True, timeout=120) as reader:
        assert stdout_bytes_of(reader, "print('warm')") == len("warm\n")
        stalled = stalled_client(server, kernel_id)
        try:
            stalled.recv_data()  # relaying; from here on it reads nothing until the end
            assert stdout_bytes_of(reader, burst) == chunks * MIB
            assert "reads too slowly" in server.log()
            assert stdout_bytes_of(reader, "print('after')") == len("after\n")
            # It reads only later than a relay's own last writes may take (a set wait, on
            # purpose: the client's silence is the test): the close it was given (30 s) still
            # stands, and the others did not wait for it.
            time.sleep(LAST_WRITES + 1)
            assert "still unsent" not in server.log()
            assert close_frame(stalled) == (SLOW_CLIENT, SLOW_CLIENT_REASON)
        finally:
            stalled.close()


def test_messages_discarded_before_a_close_never_count_as_written():
    """A relay tells the kernel host which iopub messages its client got by their end offsets:
    a close frame written after queued messages were dropped must not make them look sent."""
    from nbflask.websocket_writer import SendAllSocket

    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sender = SendAllSocket(ours, limit=1 << 30)
    try:
        ends = []
        for _ in range(4096):  # far more than the socket buffers: most wait in the queue
            assert sender.offer([b"m" * 100])  # each shorter than the close frame
            ends.append(sender.taken)
        dropped = sender.discard()
        assert dropped > 0
        sender.send(b"c" * 125)  # the close frame, behind what was kept
        received = 0
        while received < sender.taken - dropped:
            received += len(theirs.recv(1 << 20))
        assert sender.drain(10)
        kept = [end for end in ends if sender.is_out(end)]
        assert kept and len(kept) < len(ends)
        assert received == kept[-1] + 125  # every message counted as out was received whole
    finally:
        sender.close()
        theirs.close()


def test_a_client_closed_as_too_slow_comes_back_to_all_it_missed_or_is_told(tmp_path):
    """Its send buffer is no larger than the replay buffer, so it finds what it left unread;
    what the kernel said while it reconnected may be more than the replay keeps, and then the
    run's output says so on stderr, where JupyterLab shows it (not only in a message type no
    front-end knows)."""
    send_buffer, replay = 4 * MIB, MIB
    chunk, chunks = MIB // 4, 32  # 8 MiB: the stalled client falls behind either bound
    burst = ("import sys, time\n"
             f"for i in range({chunks}):\n"
             f"    sys.stdout.write('x' * {chunk}); sys.stdout.flush(); time.sleep(0.02)")
    config = {"server": {"websocket_send_buffer": send_buffer}, "kernels": {"replay_buffer_bytes": replay}}
    with start_nbflask(tmp_path, config) as server:
        kernel_id = server.session().post(server.url + "api/kernels", timeout=90).json()["id"]
        session_id = uuid.uuid4().hex
        url = (server.url.replace("http", "ws", 1)
               + f"api/kernels/{kernel_id}/channels?token={TOKEN}&session_id={session_id}")
        stalled = websocket.create_connection(url, subprotocols=[V1], timeout=120, skip_utf8_validation=True,
                                              sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
        with KernelSocket(server.url, kernel_id, TOKEN, v1=True, timeout=120) as reader:
            assert stdout_bytes_of(reader, "print('warm')") == len("warm\n")
            try:
                stalled.recv_data()  # relaying (its iopub confirmed); from here on it reads nothing
                msg_id = reader.send("shell", "execute_request", {"code": burst, "silent": False})
                reader.wait_for(lambda m: m["header"]["msg_type"] == "status"
                                and m["parent_header"].get("msg_id") == msg_id
                                and m["content"]["execution_state"] == "idle", timeout=120)
                assert f"over its send buffer ({replay} bytes)" in server.log()
                before, code = stdout_until_close(stalled, msg_id)
                assert code == SLOW_CLIENT
            finally:
                stalled.close()
        with KernelSocket(server.url, kernel_id, TOKEN, v1=True, session_id=session_id) as back:
            asked = back.send("control", "kernel_info_request", {})  # answered after the replay
            back.wait_for(lambda m: m["channel"] == "control" and m["parent_header"].get("msg_id") == asked)
            after = [m for m in back.pending if m["parent_header"].get("msg_id") == msg_id
                     and m["header"]["msg_type"] == "stream"]
    out = before + sum(len(m["content"]["text"]) for m in after if m["content"]["name"] == "stdout")
    told = [m["content"]["text"] for m in after if m["content"]["name"] == "stderr"]
    assert out <= chunks * chunk
    assert out == chunks * chunk or (len(told) == 1 and "output messages of this kernel were lost" in told[0])


def stdout_until_close(ws: websocket.WebSocket, msg_id: str) -> tuple[int, int]:
    """Stdout characters of run `msg_id` a raw v1 client reads up to its close, and the close code."""
    received = 0
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return received, struct.unpack("!H", data[:2])[0]
        if opcode == websocket.ABNF.OPCODE_BINARY:
            message = v1_unpack(data)
            if (message["header"]["msg_type"] == "stream" and message["content"]["name"] == "stdout"
                    and message["parent_header"].get("msg_id") == msg_id):
                received += len(message["content"]["text"])
