"""What connections sending huge request heads cost `nbflask run` in memory.

Each connection sends its request line, Host and 98 header lines of about 64 KiB (the
per-line limit; 99 lines in all is the most gevent takes), then the blank line, and reads the
answer. The script prints the server's resident memory before and its peak (VmHWM) once
every connection has its answer: what the server held while it read the heads.

    python benchmarks/bench_big_heads.py [--connections 30]

2026-12-07, 2-core machine shared with other work, 30 connections:
    before (each head held whole, 6.4 MB; 200)     RSS 54 -> peak 149 MB
    after (431 past 64 KiB of headers in all)      RSS 54 -> peak 54 MB
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
from live import start_nbflask  # noqa: E402

LINE = b"X-Big-%03d: " + b"y" * (64 * 1024 - 20) + b"\r\n"


def memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def send_head(port: int) -> bytes:
    """Send the head (as much of it as the server takes) and return the answer's first line."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(60)
        try:
            sock.sendall(b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for number in range(98):
                sock.sendall(LINE % number)
            sock.sendall(b"\r\n")
        except OSError:
            pass  # refused and closed: the answer is waiting
        return sock.recv(4096).split(b"\r\n")[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=30)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, start_nbflask(Path(folder)) as server:
        pid = server.proc.pid
        before = memory_mb(pid, "VmRSS")
        with ThreadPoolExecutor(options.connections) as pool:
            answers = list(pool.map(send_head, [server.port] * options.connections))
        peak = memory_mb(pid, "VmHWM")
    print(f"{options.connections} connections of 98 x 64 KiB header lines:"
          f" RSS {before:.0f} -> peak {peak:.0f} MB; answers: {sorted(set(answers))}")


if __name__ == "__main__":
    main()
