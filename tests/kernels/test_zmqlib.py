"""Waiting on ZeroMQ sockets under gevent, with descriptors past select()'s limit of 1024.

A gevent worker with a few dozen kernel websockets holds over a thousand descriptors (each
relay has seven ZeroMQ sockets, and each of those its own). zmq.green waits in select(),
which refuses descriptors of 1024 and more: every new websocket then failed with
`ValueError: filedescriptor out of range in select()` (the load benchmark found it).
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r'''
from gevent import monkey
monkey.patch_all()
import os, resource
import gevent
import zmq
from nbflask.protocol import zmqlib

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), max(hard, 4096)))
ballast = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # push new descriptors past 1024
a = zmqlib.socket(zmq.PAIR, bind="inproc://fd-limit")
b = zmqlib.socket(zmq.PAIR, connect="inproc://fd-limit")
assert a.getsockopt(zmq.FD) >= 1024
poller = zmqlib.poller()
poller.register(a, zmq.POLLIN)
assert poller.poll(50) == []                       # times out, nothing ready
gevent.spawn_later(0.1, b.send, b"late")
assert dict(poller.poll(5000)) == {a: zmq.POLLIN}  # wakes when a message arrives
assert a.recv() == b"late"
assert not zmqlib.poll(a, 50)
b.send(b"now")
assert zmqlib.poll(a, 5000) and a.recv() == b"now"
print("ok")
'''


def test_green_polling_works_past_select_limit():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
