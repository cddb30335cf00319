"""Time a chunked upload as JupyterLab makes it: PUT with `chunk` 1, 2, ..., -1, base64 content.

JupyterLab uploads a file bigger than its chunk size (1 MiB) in 1 MiB pieces, one request
after the other, each a JSON model with `"format": "base64"`. This runs a real `nbflask run`
(file store) and, when it is installed, a real `jupyter-server` side by side in the same
run, uploads the same bytes to both, checks the size that arrived, and prints both times,
the throughput, the servers' peak memory and the nbflask/Jupyter ratio. Jupyter Server is
never a project dependency: point --jupyter at it in a scratch venv, e.g.

    python benchmarks/bench_upload.py --jupyter /work/jsvenv/bin/jupyter-server

Without it the benchmark says so and reports nbflask alone.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time

from bench_contents import Server, add_jupyter_option, side_by_side

MIB = 1 << 20
DEFAULT_JUPYTER = "/work/jsvenv/bin/jupyter-server"
#: Distinct chunk contents the upload cycles through (random bytes: no compression helps).
DISTINCT_CHUNKS = 8


def chunk_bodies(total: int, chunk_size: int) -> list[tuple[int, bytes]]:
    """(chunk number, encoded base64 content) for each request; numbers as JupyterLab sends them."""
    contents = [base64.b64encode(os.urandom(chunk_size)) for _ in range(DISTINCT_CHUNKS)]
    count = -(-total // chunk_size)
    numbers = [*range(1, count), -1]
    return [(number, contents[index % DISTINCT_CHUNKS]) for index, number in enumerate(numbers)]


def upload(server: Server, name: str, chunks: list[tuple[int, bytes]]) -> float:
    """Seconds for the whole upload, one chunk after the other, as JupyterLab does."""
    url = server.url + "api/contents/" + name
    headers = {"Content-Type": "application/json"}
    head = b'{"type": "file", "format": "base64", "name": "' + name.encode() + b'", "chunk": '
    start = time.perf_counter()
    for number, content in chunks:
        body = head + str(number).encode() + b', "content": "' + content + b'"}'
        server.session.put(url, data=body, headers=headers).raise_for_status()
    return time.perf_counter() - start


def measure(server: Server, chunks: list[tuple[int, bytes]], expected: int) -> dict[str, float]:
    upload(server, "warm-up.bin", chunks[:2] + [(-1, chunks[-1][1])])
    seconds = upload(server, "upload.bin", chunks)
    model = server.session.get(server.url + "api/contents/upload.bin?content=0").json()
    if model["size"] != expected:
        raise SystemExit(f"{server.name}: uploaded {model['size']} bytes, expected {expected}")
    return {"seconds": seconds, "peak_rss_mb": server.peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="file size in MiB")
    parser.add_argument("--chunk-mib", type=float, default=1, help="chunk size in MiB (JupyterLab: 1)")
    add_jupyter_option(parser, DEFAULT_JUPYTER)
    args = parser.parse_args()

    chunk_size = int(args.chunk_mib * MIB)
    chunks = chunk_bodies(args.mib * MIB, chunk_size)
    expected = chunk_size * len(chunks)  # every chunk, the last included, is full size here
    print(f"upload: {args.mib} MiB in {len(chunks)} chunks of {args.chunk_mib:g} MiB, base64 JSON")

    results = side_by_side(args.jupyter, lambda server: measure(server, chunks, expected))

    for name, result in results.items():
        seconds, peak = result["seconds"], result["peak_rss_mb"]
        print(f"{name:8} {seconds:7.2f} s  {args.mib / seconds:6.1f} MiB/s  peak RSS {peak:.0f} MB")
    if len(results) == 2:
        ratio = results["nbflask"]["seconds"] / results["jupyter"]["seconds"]
        print(f"nbflask/jupyter time ratio: {ratio:.2f} (target: at most 1.2)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
