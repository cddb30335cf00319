"""The kernel host's memory under many short runs: is the recording held to its bound?

    .venv/bin/python benchmarks/bench_recording.py [--clients 100] [--kernels 4] [--seconds 60]
        [--recording-bytes 1048576] [--replay-bytes 16777216]

Starts `nbflask run` with `kernels.recording_bytes` (1 MiB, as in the report that found
6,000 output-less runs all kept), `--kernels` ipykernels and `--clients` websockets spread
over them (legacy JSON protocol, one thread each). Every client executes cells that print
nothing (`pass`, plus a comment of `--code-bytes`: a notebook's cells have code), back to back,
each with a notebook `cellId` as JupyterLab sends it, for `--seconds`.
The kernel host's RSS is sampled every second (its kernels apart).

Reported: executions, the host's RSS idle, connected, peak and at the end, and how many runs
each kernel's recording holds at the end (with what it says it dropped). Run it once with
`--replay-bytes 0` to see what the replay buffer (each kernel's iopub, for reconnecting
clients) takes apart from the recording.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import requests
import websocket
import yaml

TOKEN = "bench-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def host_rss(server: psutil.Process) -> float:
    """The kernel host's resident memory, in MB (0 before it started)."""
    for child in server.children():
        try:
            if "nbflask.host.server" in " ".join(child.cmdline()):
                return child.memory_info().rss / 1e6
        except psutil.NoSuchProcess:
            continue
    return 0.0


class Client(threading.Thread):
    """One websocket executing output-less cells until `until`."""

    def __init__(self, url: str, kernel_id: str, until: float, code: str) -> None:
        super().__init__(daemon=True)
        self.code = code
        self.url = url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
        self.session = uuid.uuid4().hex
        self.until = until
        self.executed = 0
        self.errors = 0
        self.error = ""

    def run(self) -> None:
        ws = websocket.create_connection(f"{self.url}?session_id={self.session}&token={TOKEN}", timeout=60)
        try:
            while time.monotonic() < self.until:
                msg_id = uuid.uuid4().hex
                ws.send(json.dumps({
                    "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "bench",
                               "session": self.session, "date": "2026-01-01T00:00:00Z", "version": "5.3"},
                    "parent_header": {}, "metadata": {"cellId": str(uuid.uuid4())}, "channel": "shell",
                    "content": {"code": self.code, "silent": False, "store_history": True,
                                "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
                    "buffers": []}))
                while True:
                    opcode, data = ws.recv_data()
                    if opcode == websocket.ABNF.OPCODE_CLOSE:
                        raise ConnectionError(f"closed by the server: {data[2:].decode(errors='replace')}")
                    message = json.loads(data)
                    if (message.get("channel") == "shell"
                            and message["parent_header"].get("msg_id") == msg_id):
                        self.executed += 1
                        break
        except (websocket.WebSocketException, OSError) as exc:
            self.errors += 1
            self.error = str(exc)
        finally:
            ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--kernels", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--recording-bytes", type=int, default=1 << 20)
    parser.add_argument("--replay-bytes", type=int, default=16 << 20)
    parser.add_argument("--code-bytes", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        port = free_port()
        config = {"server": {"ip": "127.0.0.1", "port": port, "open_browser": False},
                  "auth": {"token": TOKEN}, "store": {"root_dir": str(directory)},
                  "kernels": {"recording_bytes": args.recording_bytes,
                              "replay_buffer_bytes": args.replay_bytes}}
        (directory / "nbflask.yaml").write_text(yaml.safe_dump(config))
        (directory / "runtime").mkdir(mode=0o700)
        env = {**os.environ, "NBFLASK_RUNTIME_DIR": str(directory / "runtime")}
        nbflask = Path(sys.executable).parent / "nbflask"
        proc = subprocess.Popen([str(nbflask), "run", "--config", str(directory / "nbflask.yaml")],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        url = f"http://127.0.0.1:{port}/"
        http = requests.Session()
        http.headers["Authorization"] = f"token {TOKEN}"
        try:
            while True:
                try:
                    http.get(url + "api/status", timeout=5)
                    break
                except requests.ConnectionError:
                    time.sleep(0.2)
            kernels = [http.post(url + "api/kernels", json={}, timeout=90).json()["id"]
                       for _ in range(args.kernels)]
            server = psutil.Process(proc.pid)
            idle = host_rss(server)
            until = time.monotonic() + args.seconds
            code = "pass" + (f"  # {'x' * args.code_bytes}" if args.code_bytes else "")
            clients = [Client(url, kernels[n % len(kernels)], until, code) for n in range(args.clients)]
            for client in clients:
                client.start()
            samples = []
            while any(client.is_alive() for client in clients):
                samples.append(host_rss(server))
                time.sleep(1)
            samples.append(host_rss(server))
            executed = sum(client.executed for client in clients)
            print(f"recording_bytes {args.recording_bytes}, replay_buffer_bytes {args.replay_bytes},"
                  f" {args.clients} clients on {args.kernels} kernels for {args.seconds:g} s,"
                  f" code of {len(code)} bytes")
            errors = sorted({client.error for client in clients if client.error})
            print(f"executions {executed}, client errors {sum(client.errors for client in clients)} {errors}")
            print(f"host RSS idle {idle:.0f} MB, after 5 s {samples[min(5, len(samples) - 1)]:.0f} MB,"
                  f" peak {max(samples):.0f} MB, end {samples[-1]:.0f} MB")
            for kernel_id in kernels:
                runs = http.get(url + f"api/kernels/{kernel_id}/runs", timeout=60).json()
                print(f"kernel {kernel_id[:8]}: {len(runs)} runs kept,"
                      f" {runs[-1]['dropped'] if runs else 0} dropped")
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
