"""Load: many websocket clients executing on many kernels through gunicorn with TLS.

    .venv/bin/python benchmarks/bench_load.py [--clients 200] [--kernels 20] [--seconds 60] [--workers 3]

Starts gunicorn (gevent workers, `config/gunicorn.conf.py`, a self-signed certificate made
now) on a free loopback port, starts `--kernels` real ipykernels through the REST API, then
opens `--clients` websockets spread over them (wss, legacy JSON protocol, one thread each).
Every client executes cells back to back for `--seconds`: each prints a line only it knows,
and the client checks that its reply came, that it says `ok`, and that the line came back
once on iopub (every client of a kernel also receives the others' output, as browsers
sharing a kernel do). The server's memory (gunicorn's master and workers, the kernel host;
kernels apart) is sampled every 2 s.

Reported: executions, errors, lost replies (none within 60 s), round-trip percentiles, and
the server's memory at start, peak and end. The aim: no error, no lost reply, memory bounded
(it levels off instead of growing with the run).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
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
ROOT = Path(__file__).resolve().parent.parent
REPLY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_cert(directory: Path) -> Path:
    path = directory / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "1", "-newkey", "rsa:2048",
                    "-keyout", str(path), "-out", str(path), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return path


def start_gunicorn(directory: Path, workers: int) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    cert = make_cert(directory)
    (directory / "notebooks").mkdir()
    config = directory / "nbflask.yaml"
    config.write_text(yaml.safe_dump({"auth": {"token": TOKEN},
                                      "store": {"root_dir": str(directory / "notebooks")}}))
    runtime = directory / "runtime"
    runtime.mkdir(mode=0o700)
    bin_dir = Path(sys.executable).parent
    argv = [str(bin_dir / "gunicorn"), "-c", str(ROOT / "config" / "gunicorn.conf.py"), "-k", "gevent",
            "-w", str(workers), "-b", f"127.0.0.1:{port}", "--certfile", str(cert), "--keyfile", str(cert),
            "nbflask:create_app()"]
    env = {**os.environ, "NBFLASK_CONFIG": str(config), "NBFLASK_RUNTIME_DIR": str(runtime)}
    log = open(directory / "server.log", "ab")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"https://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url + "api", verify=str(cert), timeout=2).status_code == 200:
                return proc, url, cert
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"gunicorn did not start; see {directory / 'server.log'}")
        time.sleep(0.2)


def server_memory(master: int) -> tuple[float, float]:
    """MB resident in gunicorn's master and workers, and in the kernel host (kernels apart)."""
    try:
        root = psutil.Process(master)
        web, host = root.memory_info().rss, 0
        for child in root.children():  # the workers and the host; kernels are the host's children
            if "nbflask.host.server" in " ".join(child.cmdline()):
                host += child.memory_info().rss
            else:
                web += child.memory_info().rss
        return web / 1e6, host / 1e6
    except psutil.Error:
        return 0.0, 0.0


def described(sample: tuple[float, float]) -> str:
    return f"{sum(sample):.0f} MB ({sample[0]:.0f} web + {sample[1]:.0f} host)"


class Client(threading.Thread):
    def __init__(self, number: int, url: str, kernel_id: str, cert: Path, until: float) -> None:
        super().__init__(daemon=True)
        self.number = number
        self.until = until
        self.session = uuid.uuid4().hex
        target = url.replace("https", "wss", 1) + f"api/kernels/{kernel_id}/channels"
        self.ws = websocket.create_connection(f"{target}?session_id={self.session}&token={TOKEN}",
                                              sslopt={"ca_certs": str(cert)}, timeout=REPLY_TIMEOUT,
                                              skip_utf8_validation=True)
        self.times: list[float] = []
        self.errors: list[str] = []
        self.lost = 0

    def execute(self, n: int) -> None:
        msg_id = uuid.uuid4().hex
        line = f"client {self.number} cell {n}\n"
        header = {"msg_id": msg_id, "msg_type": "execute_request", "username": "bench",
                  "session": self.session, "date": "2026-01-01T00:00:00Z", "version": "5.3"}
        self.ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "channel": "shell",
                                 "content": {"code": f"print({line.strip()!r})", "silent": False,
                                             "store_history": False, "user_expressions": {},
                                             "allow_stdin": False, "stop_on_error": True}}))
        started = time.monotonic()
        reply, idle, text = None, False, ""
        while reply is None or not idle:
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                self.lost += 1
                return
            if msg_id not in raw:  # the other clients' output: skipped unparsed, to spare this CPU
                continue
            message = json.loads(raw)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            msg_type = message["header"]["msg_type"]
            if message["channel"] == "shell":
                reply = message
            elif msg_type == "stream":
                text += message["content"]["text"]
            elif msg_type == "status" and message["content"]["execution_state"] == "idle":
                idle = True
        self.times.append(time.monotonic() - started)
        if reply["content"]["status"] != "ok":
            self.errors.append(f"client {self.number}: reply {reply['content']}")
        elif text != line:
            self.errors.append(f"client {self.number}: output {text!r}, expected {line!r}")

    def run(self) -> None:
        n = 0
        try:
            while time.monotonic() < self.until:
                self.execute(n)
                n += 1
        except Exception as exc:  # a closed websocket, a broken frame: counted, not raised
            self.errors.append(f"client {self.number}: {exc!r}")
        finally:
            self.ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--kernels", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="nbflask-load-"))
    proc, url, cert = start_gunicorn(directory, args.workers)
    client = requests.Session()
    client.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    client.verify = str(cert)
    client.headers["Authorization"] = f"token {TOKEN}"
    try:
        kernel_ids = [client.post(url + "api/kernels", json={}, timeout=120).json()["id"]
                      for _ in range(args.kernels)]
        for kernel_id in kernel_ids:  # every kernel ready before the clock starts
            deadline = time.monotonic() + 120
            while client.get(url + f"api/kernels/{kernel_id}", timeout=30).json()["execution_state"] \
                    != "idle":
                assert time.monotonic() < deadline, f"kernel {kernel_id} never became idle"
                time.sleep(0.2)
        memory = [server_memory(proc.pid)]
        until = time.monotonic() + 3600  # set for real once every client is connected
        clients = [Client(n, url, kernel_ids[n % len(kernel_ids)], cert, until) for n in range(args.clients)]
        connected = server_memory(proc.pid)
        until = time.monotonic() + args.seconds
        for c in clients:
            c.until = until
            c.start()
        while any(c.is_alive() for c in clients):
            memory.append(server_memory(proc.pid))
            time.sleep(2)
        memory.append(server_memory(proc.pid))
        times = sorted(t for c in clients for t in c.times)
        errors = [e for c in clients for e in c.errors]
        lost = sum(c.lost for c in clients)
        status = client.get(url + "api/status", timeout=30).json()
        quantile = statistics.quantiles(times, n=100) if len(times) > 1 else [0.0] * 99
        print(f"{args.clients} clients on {args.kernels} kernels, {args.seconds:g} s,"
              f" gunicorn -w {args.workers} (gevent, TLS), {os.cpu_count()} cores")
        print(f"executions     {len(times)} ({len(times) / args.seconds:.1f}/s)")
        print(f"errors         {len(errors)}")
        print(f"lost replies   {lost}")
        print(f"round trip     median {statistics.median(times) * 1000:.0f} ms,"
              f" p95 {quantile[94] * 1000:.0f} ms, p99 {quantile[98] * 1000:.0f} ms,"
              f" max {times[-1] * 1000:.0f} ms")
        peak = max(memory, key=sum)
        print(f"server memory  idle {described(memory[0])}, connected {described(connected)},")
        print(f"               half-way {described(memory[len(memory) // 2])}, peak {described(peak)},"
              f" end {described(memory[-1])}")
        print(f"connections    {status.get('connections')} still open at the end (expected 0)")
        for error in errors[:10]:
            print("  ", error)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
