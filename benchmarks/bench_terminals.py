"""Time a terminal as a page uses it: keystroke echo round trips, and a burst of output.

Runs a real `nbflask run` (its terminals live in the kernel host, output relayed over the
host's event feed) and, when it is installed, a real `jupyter-server` with
jupyter_server_terminals (terminado on tornado) side by side, each with the user's login
shell, over the same terminado websocket messages. Prints the median echo round trip (one
`["stdin", "x"]` until the pty echoes it back), the output throughput (`yes` lines through
the pty until a marker arrives), and the nbflask/Jupyter ratios. Jupyter Server is never a
project dependency: point --jupyter at it in a scratch venv, e.g.

    python benchmarks/bench_terminals.py --jupyter ~/.cache/nbflask/jupyter-server-venv/bin/jupyter-server

Without it the benchmark says so and reports nbflask alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import websocket
from bench_contents import TOKEN, Server, add_jupyter_option, side_by_side

DEFAULT_JUPYTER = os.path.expanduser("~/.cache/nbflask/jupyter-server-venv/bin/jupyter-server")
LINE = "abcdefghijklmnopqrstuvwxyz0123456789"  # `yes` prints it with \r\n: 38 bytes a line


class Page:
    """One terminado websocket, read until a marker shows in the output."""

    def __init__(self, server: Server, name: str) -> None:
        url = server.url.replace("http", "ws", 1) + f"terminals/websocket/{name}"
        self.ws = websocket.create_connection(url, header=[f"Authorization: token {TOKEN}"], timeout=60)
        self.output = ""

    def send(self, *message: object) -> None:
        self.ws.send(json.dumps(list(message)))

    def read_until(self, marker: str) -> int:
        """Characters received until `marker` appears (the text before it is dropped)."""
        received = 0
        while marker not in self.output:
            message = json.loads(self.ws.recv())
            if message[0] == "stdout":
                received += len(message[1])
                self.output = self.output[-len(marker):] + message[1]
        self.output = self.output.split(marker, 1)[1]
        return received


def measure(server: Server, echoes: int, lines: int) -> dict[str, float]:
    name = server.session.post(server.url + "api/terminals").json()["name"]
    page = Page(server, name)
    page.send("set_size", 40, 120, 600, 1200)
    page.send("stdin", "stty -echoctl; echo ready-$((1+1))\r")
    page.read_until("ready-2")
    times = []
    for number in range(echoes):
        key = "xy"[number % 2]
        start = time.perf_counter()
        page.send("stdin", key)
        page.read_until(key)
        times.append(time.perf_counter() - start)
    page.send("stdin", "\x15")  # Ctrl-U: forget the typed keys
    start = time.perf_counter()
    page.send("stdin", f"yes {LINE} | head -n {lines}; echo done-$((2+3))\r")
    received = page.read_until("done-5")
    seconds = time.perf_counter() - start
    page.ws.close()
    server.session.delete(server.url + f"api/terminals/{name}")
    return {"echo_ms": statistics.median(times) * 1000, "output_mb_s": received / seconds / 1e6,
            "output_mb": received / 1e6, "peak_rss_mb": server.peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--echoes", type=int, default=200, help="keystroke round trips timed")
    parser.add_argument("--lines", type=int, default=500_000, help="lines of output (38 bytes each)")
    add_jupyter_option(parser, DEFAULT_JUPYTER)
    args = parser.parse_args()

    results = side_by_side(args.jupyter, lambda server: measure(server, args.echoes, args.lines))

    for name, result in results.items():
        print(f"{name:8} echo {result['echo_ms']:6.2f} ms (median of {args.echoes})  output"
              f" {result['output_mb_s']:6.1f} MB/s ({result['output_mb']:.1f} MB)  peak RSS"
              f" {result['peak_rss_mb']:.0f} MB")
    if len(results) == 2:
        nb, js = results["nbflask"], results["jupyter"]
        print(f"nbflask/jupyter: echo time {nb['echo_ms'] / js['echo_ms']:.2f},"
              f" output throughput {nb['output_mb_s'] / js['output_mb_s']:.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
