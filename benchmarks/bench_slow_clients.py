"""How long slow clients hold connections: stalled TLS handshakes, half-sent requests and idle
kept-alive connections against `nbflask run` and gunicorn over TLS, with the default
`server.*_timeout` settings.

Prints, per server and kind, how many the server closed and when (seconds after they were
opened). 40 of each, 2026-12-07, on a 2-core machine shared with other work:

                      before (given up at 40 s)    defaults (20/20/30 s)
    nbflask run
      stalled handshake   0/40 closed                  40/40 at 20.0 s
      half-sent request   0/40                         40/40 at 20.2-20.4 s
      idle keep-alive     0/40                         40/40 at 30.2-30.4 s
    gunicorn
      stalled handshake   0/40                         40/40 at 20.1 s
      half-sent request   40/40 at 2.4-2.8 s           40/40 at 20.2-20.4 s
      idle keep-alive     40/40 at 2.6-3.2 s           40/40 at 20.5-20.6 s

(gunicorn's own `keepalive` default is 2 s; `config/gunicorn.conf.py` now sets it from the
deployment's `header_timeout` and `keepalive_timeout`.)

    python benchmarks/bench_slow_clients.py [--connections 40] [--give-up 75] [--servers nbflask gunicorn]
"""

from __future__ import annotations

import argparse
import socket
import ssl
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
from live import start_gunicorn, start_nbflask  # noqa: E402


def open_slow(kind: str, port: int, cert: Path, give_up: float) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(give_up)
    if kind == "stalled handshake":
        return sock
    tls = ssl.create_default_context(cafile=str(cert)).wrap_socket(sock, server_hostname="127.0.0.1")
    if kind == "half-sent request":
        tls.sendall(f"GET /api HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
    else:  # idle keep-alive: one whole request and its answer, then nothing
        tls.sendall(f"GET /api HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        answer = b""
        while b'"version"' not in answer:
            answer += tls.recv(65536)
    return tls


def seconds_to_close(sock: socket.socket, opened: float) -> float | None:
    """When the server closed the connection, or None if it was still open at the give-up."""
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except (ssl.SSLError, ConnectionResetError):
        pass
    finally:
        sock.close()
    return time.monotonic() - opened


def measure(server, kind: str, count: int, give_up: float) -> list[float | None]:
    opened = time.monotonic()
    sockets = [open_slow(kind, server.port, server.cert, give_up) for _ in range(count)]
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda sock: seconds_to_close(sock, opened), sockets))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--give-up", type=float, default=75)
    parser.add_argument("--servers", nargs="+", default=["nbflask", "gunicorn"])
    args = parser.parse_args()
    print(f"{'server':9} {'kind':18} {'closed':>8} {'median s':>9} {'max s':>6}")
    for name in args.servers:
        with tempfile.TemporaryDirectory() as folder:
            start = start_nbflask if name == "nbflask" else start_gunicorn
            with start(Path(folder), tls=True) as server:
                kinds = ["stalled handshake", "half-sent request", "idle keep-alive"]
                def run(kind: str, server=server) -> list[float | None]:
                    return measure(server, kind, args.connections, args.give_up)

                with ThreadPoolExecutor(len(kinds)) as pool:
                    results = dict(zip(kinds, pool.map(run, kinds), strict=True))
                for kind, times in results.items():
                    closed = [t for t in times if t is not None]
                    median = f"{statistics.median(closed):.1f}" if closed else "-"
                    longest = f"{max(closed):.1f}" if closed else "-"
                    print(f"{name:9} {kind:18} {len(closed):>3}/{len(times):<4} {median:>9} {longest:>6}")


if __name__ == "__main__":
    main()
