"""How long a web worker's call to the kernel host takes, on the paths that make many of them.

    .venv/bin/python benchmarks/bench_host_calls.py [--calls 1000] [--gevent]

Starts a kernel host (as `nbflask run` would, on its first kernel operation) and one kernel,
then times, one after the other, `--calls` of: `get_kernel` (each kernel websocket's connect
asks it), `counts` (every /api/status), and `progress` notices (sent, never waited for, as a
relay sends one per delivered iopub message; the time is the sender's). With `--gevent`, under
gevent's patching as in a gunicorn worker.

Reported: microseconds per call, the median of five rounds: wall time, and the CPU time of
this process (the worker's side) and of the kernel host (its side; a notice's is counted as
the host gets to it, so it may spill into the next round).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import psutil


def per_call(call, calls: int, host: psutil.Process) -> tuple[float, float, float]:
    """Microseconds per call of `call`: wall time, this process's CPU time and the kernel host's,
    the median of five rounds of `calls` (CPU time holds still on a busy machine; wall time
    does not)."""
    rounds = []
    for _ in range(5):
        host_before = sum(host.cpu_times()[:2])
        cpu_before, started = time.process_time(), time.perf_counter()
        for _ in range(calls):
            call()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_before
        rounds.append((wall, cpu, sum(host.cpu_times()[:2]) - host_before))
    return tuple(statistics.median(r[i] for r in rounds) / calls * 1e6 for i in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--gevent", action="store_true", help="patch with gevent first, as a gunicorn worker")
    args = parser.parse_args()
    if args.gevent:
        from gevent import monkey

        monkey.patch_all()
    from nbflask.config import load_settings
    from nbflask.host_client import HostClient

    with tempfile.TemporaryDirectory() as root:
        os.environ["NBFLASK_RUNTIME_DIR"] = tempfile.mkdtemp(dir=root)  # 0700, and this run's own
        host = HostClient(load_settings({"store": {"root_dir": root}}, environ={}))
        try:
            kernel_id = host.start_kernel()["id"]
            header = b'{"msg_id": "none"}'
            sock = host.progress_socket()
            process = psutil.Process(host.pid())
            results = {
                "get_kernel": per_call(lambda: host.get_kernel(kernel_id), args.calls, process),
                "counts": per_call(host.counts, args.calls, process),
                "progress (notice)": per_call(lambda: host.progress(sock, kernel_id, ["c"], header),
                                              args.calls, process),
            }
            sock.close()
            host.shutdown_kernel(kernel_id)
        finally:
            host.close()
    mode = "gevent" if args.gevent else "threads"
    print(f"us per call, median of 5 rounds of {args.calls} ({mode}):   wall   worker CPU   host CPU")
    for name, (wall, cpu, host_cpu) in results.items():
        print(f"{name:<40} {wall:8.1f} {cpu:12.1f} {host_cpu:10.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
