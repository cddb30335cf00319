"""Kernel round trips and streaming through nbflask, side by side with the physical limit.

    .venv/bin/python benchmarks/bench_kernels.py [--executions 300] [--megabytes 50] [--transports ipc,tcp]

Starts one `nbflask run` (gevent) per kernel transport (`kernels.transport`: unix sockets or
loopback TCP) on free loopback ports, starts one real ipykernel in each through the REST API,
then measures on those kernels, in one run, every path taking its turn:
  * the round-trip time of sequential `1+1` executions (request sent -> reply and idle seen;
    the paths take turns, execution by execution),
  * the MB/s of N MB printed by the kernel, flushed per MiB (a stream of 1 MiB messages), and
    unflushed (one N MB message: what each store-and-forward hop costs),
both through nbflask's websocket (v1 and legacy protocols) and straight to the kernel's
ZeroMQ sockets with a direct client (the physical limit). Ratios are nbflask / direct.
Targets: latency within 1.5x of direct, throughput at least 0.8x of direct.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
import yaml
import zmq

from nbflask.protocol import endpoints, wire

TOKEN = "bench-token-0123456789"
V1 = wire.V1_SUBPROTOCOL


class Direct:
    """A client on the kernel's own sockets: what no relay can beat."""

    name = "direct ZeroMQ"

    def __init__(self, connection: dict) -> None:
        self.context = zmq.Context()
        self.shell = self.context.socket(zmq.DEALER)
        self.shell.connect(endpoints.url(connection, "shell"))
        self.iopub = self.context.socket(zmq.SUB)
        self.iopub.setsockopt(zmq.RCVHWM, 0)
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.iopub.connect(endpoints.url(connection, "iopub"))
        self.signer = wire.Signer(connection["key"])
        self.poller = zmq.Poller()
        self.poller.register(self.shell, zmq.POLLIN)
        self.poller.register(self.iopub, zmq.POLLIN)
        self.session = uuid.uuid4().hex

    def send(self, code: str) -> str:
        message = wire.new_message("execute_request", {"code": code, "silent": False}, session=self.session)
        self.shell.send_multipart(self.signer.serialize(message))
        return message.msg_id

    def receive(self) -> list[tuple[str, dict, dict, dict]]:
        received = []
        for sock, _ in self.poller.poll(60_000):
            frames = sock.recv_multipart()
            _, signature, parts = wire.split(frames)
            self.signer.verify(signature, parts)
            received.append(("shell" if sock is self.shell else "iopub", *decode(parts)))
        if not received:
            raise TimeoutError("kernel silent for 60 s")
        return received

    def close(self) -> None:
        self.context.destroy(linger=0)


class RawWebsocket:
    """A lean websocket client (RFC 6455 on a plain socket, large reads), standing in for a
    browser's native one: websocket-client's pure-Python reader would measure itself."""

    def __init__(self, url: str, subprotocol: str | None) -> None:
        host, _, rest = url.split("://", 1)[1].partition("/")
        hostname, port = host.rsplit(":", 1)
        self.sock = socket.create_connection((hostname, int(port)), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        offer = f"Sec-WebSocket-Protocol: {subprotocol}\r\n" if subprotocol else ""
        self.sock.sendall((f"GET /{rest} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
                           f"{offer}\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(4096)
        head, _, self.pending = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"websocket refused: {head.splitlines()[0]!r}")

    def _read(self, size: int) -> bytearray:
        buffer = bytearray(size)
        view = memoryview(buffer)
        taken = min(size, len(self.pending))
        view[:taken] = self.pending[:taken]
        self.pending = self.pending[taken:]
        while taken < size:
            got = self.sock.recv_into(view[taken:], size - taken)
            if not got:
                raise ConnectionError("websocket closed")
            taken += got
        return buffer

    def recv(self) -> bytearray:
        """One data message (unfragmented, as nbflask sends them); control frames skipped."""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            payload = self._read(length)
            if first & 0x0F in (0x1, 0x2):
                return payload
            if first & 0x0F == 0x9:  # ping: answer, or the server closes an hour-long run
                self.send(bytes(payload), opcode=0xA)

    def send(self, payload: bytes, text: bool = False, opcode: int | None = None) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        length = len(payload)
        header = bytes([0x80 | (opcode or (0x1 if text else 0x2))])
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        self.sock.sendall(header + mask + masked)

    def close(self) -> None:
        self.sock.close()


class Through:
    """A Jupyter client on nbflask's kernel websocket."""

    def __init__(self, base_url: str, kernel_id: str, v1: bool) -> None:
        self.v1 = v1
        self.name = "nbflask websocket " + ("v1" if v1 else "legacy JSON")
        url = base_url + f"api/kernels/{kernel_id}/channels?token={TOKEN}"
        self.ws = RawWebsocket(url, V1 if v1 else None)
        self.session = uuid.uuid4().hex

    def send(self, code: str) -> str:
        message = wire.new_message("execute_request", {"code": code, "silent": False}, session=self.session)
        if self.v1:
            self.ws.send(wire.v1_pack("shell", message.parts()), text=False)
        else:
            self.ws.send(json.dumps({**message.to_dict("shell"), "buffers": []}).encode(), text=True)
        return message.msg_id

    def receive(self) -> list[tuple[str, dict, dict, dict]]:
        data = self.ws.recv()
        if self.v1:
            channel, parts = wire.v1_unpack(data)
            return [(channel, *decode(parts))]
        message = json.loads(data)
        return [(message["channel"], message["header"], message["parent_header"], message["content"])]

    def close(self) -> None:
        self.ws.close()


def decode(parts: list[bytes]) -> tuple[dict, dict, dict]:
    """Header, parent header and content, decoded as any client must."""
    return json.loads(parts[0]), json.loads(parts[1]), json.loads(parts[3])


def run(client, code: str) -> int:
    """Execute `code`; returns the stdout bytes seen once the reply and idle status are in."""
    msg_id = client.send(code)
    replied = idle = False
    stdout = 0
    while not (replied and idle):
        for channel, header, parent, content in client.receive():
            if parent.get("msg_id") != msg_id:
                continue
            if channel == "shell":
                replied = True
            elif header["msg_type"] == "stream":
                stdout += len(content["text"])
            elif header["msg_type"] == "status" and content["execution_state"] == "idle":
                idle = True
    return stdout


def latencies(clients: dict[str, object], executions: int) -> dict[str, float]:
    """Median round trip per client; executions interleaved, so load changes hit all alike."""
    samples: dict[str, list[float]] = {name: [] for name in clients}
    for number in range(20 + executions):
        for name, client in clients.items():
            started = time.perf_counter()
            run(client, "1+1")
            if number >= 20:  # the first ones warm up
                samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def throughput(client, megabytes: int, flush: bool) -> float:
    """MB/s of `megabytes` MiB printed by the kernel: flushed per MiB, a stream of 1 MiB
    messages as a cell printing as it goes makes; unflushed, ipykernel sends it all as one
    message at the end, which shows the cost of each store-and-forward hop."""
    code = (f"import sys\nfor i in range({megabytes}):\n"
            f"    sys.stdout.write('x' * 1048576){'; sys.stdout.flush()' if flush else ''}")
    started = time.perf_counter()
    received = run(client, code)
    elapsed = time.perf_counter() - started
    assert received == megabytes * 1048576, f"{client.name}: got {received} bytes"
    return megabytes / elapsed


def start_server(folder: Path, transport: str) -> tuple[subprocess.Popen, str, Path]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runtime = folder / "runtime"
    runtime.mkdir(mode=0o700)
    config = folder / "nbflask.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"port": port, "open_browser": False},
        "auth": {"token": TOKEN},
        "store": {"root_dir": str(folder)},
        "kernels": {"transport": transport},
    }))
    env = {**os.environ, "NBFLASK_RUNTIME_DIR": str(runtime)}
    process = subprocess.Popen([str(Path(sys.executable).parent / "nbflask"), "run", "--config", str(config)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "api", timeout=1).ok:
                return process, url, runtime
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("nbflask did not start")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--executions", type=int, default=300)
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="stream runs per path (median reported)")
    parser.add_argument("--transports", default="ipc,tcp", help="kernel transports to compare")
    args = parser.parse_args()
    transports = args.transports.split(",")
    servers = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            makers = {}
            for transport in transports:
                folder = Path(tmp) / transport
                folder.mkdir()
                process, url, runtime = start_server(folder, transport)
                servers.append(process)
                headers = {"Authorization": f"token {TOKEN}"}
                kernel_id = requests.post(url + "api/kernels", headers=headers, timeout=60).json()["id"]
                connection = json.loads((runtime / f"kernel-{kernel_id}.json").read_text())
                makers.update({
                    f"{transport}: {Direct.name}": lambda c=connection: Direct(c),
                    f"{transport}: nbflask websocket v1": lambda u=url, k=kernel_id: Through(u, k, v1=True),
                    f"{transport}: nbflask legacy JSON": lambda u=url, k=kernel_id: Through(u, k, v1=False),
                })
            clients = {name: make() for name, make in makers.items()}
            round_trips = latencies(clients, args.executions)
            for client in clients.values():
                client.close()
            rates: dict[str, list[float]] = {name: [] for name in makers}
            single: dict[str, list[float]] = {name: [] for name in makers}
            for _ in range(args.rounds):  # interleaved, so a busy moment hits every path alike
                for name, make in makers.items():
                    client = make()
                    run(client, "1+1")
                    rates[name].append(throughput(client, args.megabytes, flush=True))
                    single[name].append(throughput(client, args.megabytes, flush=False))
                    client.close()
        finally:
            for process in servers:
                process.terminate()
                process.wait(30)
    results = {name: (round_trips[name], statistics.median(rates[name]), statistics.median(single[name]))
               for name in round_trips}
    print(f"One ipykernel per transport; round trip: median of {args.executions} sequential `1+1`"
          f" executions; {args.megabytes} MB of stdout (median of {args.rounds}) as a stream of 1 MiB"
          " messages, and as one message. Ratios: to direct ZeroMQ on TCP (the classic set-up).")
    print(f"{'path':36} {'round trip':>12} {'ratio':>6} {'stream':>11} {'ratio':>6}"
          f" {'one message':>12} {'ratio':>6}")
    base = "tcp" if "tcp" in transports else transports[0]
    direct_latency, direct_rate, direct_single = results[f"{base}: {Direct.name}"]
    for name, (seconds, rate, one) in results.items():
        print(f"{name:36} {seconds * 1000:9.2f} ms {seconds / direct_latency:5.2f}x "
              f"{rate:6.1f} MB/s {rate / direct_rate:5.2f}x {one:7.1f} MB/s {one / direct_single:5.2f}x")
    print("targets: round trip <= 1.50x direct, stream >= 0.80x direct")


if __name__ == "__main__":
    main()
