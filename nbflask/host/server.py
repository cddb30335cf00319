"""The kernel host (sidecar): `python -m nbflask.host.server`, one per deployment.

It owns the kernel processes and the kernel and session registries, and answers the web
workers on a ZeroMQ ROUTER socket in the private runtime folder: the operations declared in
nbflask.protocol.host_api (which also says what goes on the wire), one greenlet each.
Lifecycle news that workers cannot see on the kernels' own sockets (a kernel died and is
restarting, is dead, was shut down, a websocket was replaced) goes out on a PUB socket,
topic = kernel id. It owns the deployment's terminals too (nbflask.host.terminals): their output
goes out on the same PUB socket, topic `term:<name>/`. It stops, and stops its kernels and
terminals, on SIGTERM/SIGINT and when the server process that owns it (its parent, or the
gunicorn master a worker started it for) goes away, even by SIGKILL. The service host
(`nbflask kernel-host`, `kernels.host: service`) has no owner: it runs until SIGTERM, its
kernels outlive it if it dies, and the next service host adopts them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Settings

from ..protocol.host_api import BAD_HOST_REQUEST, NOTICES, OPERATIONS, HostAPI, HostNotices, Missed
from ..protocol.operations import (
    BadRequest,
    Operation,
    RawFrame,
    RawFrames,
    WorkerPid,
    implements,
    read_request,
)

log = logging.getLogger(__name__)

PRUNE_INTERVAL = 2.0  # seconds between checks for websockets whose web worker died


@implements(HostAPI, HostNotices)
class HostServer(HostAPI, HostNotices):
    """The kernel host's side of every declared operation (nbflask.protocol.host_api): each
    method of HostAPI and HostNotices, implemented with the kernel, session, run and terminal
    registries; `handle` answers the requests that name one."""

    def __init__(self, settings: Settings, owner_pid: int | None) -> None:
        import gevent.event
        import gevent.lock

        from .executions import Executions
        from .manager import KernelManager
        from .sessions import SessionRegistry
        from .terminals import TerminalManager

        self.settings = settings
        self.owner_pid = owner_pid
        self.kernels = KernelManager(settings, self.publish)
        self.sessions = SessionRegistry(self.kernels)
        self.executions = Executions(self.kernels, self.sessions)
        self.terminals = TerminalManager(settings, self.send_event)
        self.stopping = gevent.event.Event()
        self.send_lock = gevent.lock.Semaphore()
        self.events: Any = None

    def publish(self, topic: str, event: dict[str, Any], frames: list[bytes] = ()) -> None:
        """An event on `topic`; `frames` (a kernel message's) follow its JSON."""
        from ..protocol import wire

        self.send_event([topic.encode(), wire.dumps(event), *frames])

    def send_event(self, frames: list[bytes]) -> None:
        """One message on the event feed: the topic frame, then the event's own frames."""
        if self.events is not None:
            with self.send_lock:
                self.events.send_multipart(frames)

    def handle(self, router: Any, frames: list[bytes]) -> None:
        """Answer one request (a notice gets no answer): the declared operation it names, called
        with its arguments bound to the declared parameters. An error the operation does not
        declare is answered all the same, and logged: the declaration is to be completed."""
        from ..api_error import APIError
        from ..protocol import wire

        identity, body, *attached = frames
        extra: list[bytes] = []
        op: Operation | None = None
        try:
            op, sent = read_request(body, OPERATIONS, NOTICES)
            arguments = op.bind(sent, attached)
        except BadRequest as exc:
            if op is not None and op.notice:
                log.warning("kernel host: a bad notice: %s", exc)
                return
            reply = {"ok": False, "status": BAD_HOST_REQUEST.status, "reason": BAD_HOST_REQUEST.reason,
                     "message": f"bad kernel host request: {exc}"}
        else:
            if op.notice:
                self.take_notice(op, arguments)
                return
            try:
                result, extra = op.result_to_wire(getattr(self, op.name)(**arguments))
                reply = {"ok": True, "result": result}
            except APIError as exc:
                if not op.declares(exc):
                    log.error("kernel host operation %s answered %d %s, which it does not declare: %s",
                              op.name, exc.status, exc.reason, exc.message)
                reply = {"ok": False, "status": exc.status, "message": exc.message, "reason": exc.reason}
            except Exception as exc:
                log.exception("kernel host request %s failed", op.name)
                reply = {"ok": False, "status": 500, "message": f"kernel host error: {exc}",
                         "reason": type(exc).__name__}
        with self.send_lock:
            router.send_multipart([identity, wire.dumps(reply), *extra])

    def take_notice(self, op: Operation, arguments: dict[str, Any]) -> None:
        """Take a notice; its sender waits for nothing, so a failure is only logged."""
        try:
            getattr(self, op.name)(**arguments)
        except Exception:
            log.exception("kernel host notice %s failed", op.name)

    # HostAPI: kernels ----------------------------------------------------------------------

    def list_kernels(self) -> list[dict[str, Any]]:
        return self.kernels.models()

    def start_kernel(self, name: str | None = None, path: str | None = None,
                     kernel_id: str | None = None) -> dict[str, Any]:
        return self.kernels.start(name, path, kernel_id).model()

    def get_kernel(self, kernel_id: str) -> dict[str, Any]:
        return self.kernels.get(kernel_id).model()

    def shutdown_kernel(self, kernel_id: str) -> None:
        self.kernels.shutdown(kernel_id)

    def interrupt_kernel(self, kernel_id: str) -> None:
        self.kernels.interrupt(kernel_id)

    def restart_kernel(self, kernel_id: str) -> dict[str, Any]:
        return self.kernels.restart(kernel_id).model()

    def connection_info(self, kernel_id: str) -> dict[str, Any]:
        return self.kernels.connection_info(kernel_id)

    # HostAPI: websocket connections --------------------------------------------------------

    def attach(self, kernel_id: str, connection_id: str, session_id: str, worker: WorkerPid = 0) -> None:
        self.kernels.attach(kernel_id, connection_id, session_id, worker)

    def wait_settled(self, kernel_id: str, timeout: float) -> bool:
        return self.kernels.wait_settled(kernel_id, timeout)

    def hello(self, topic: str, connection_id: str) -> None:
        self.publish(topic, {"event": "hello", "connection_id": connection_id})

    def detach(self, kernel_id: str, connection_id: str, last_msg_id: str | None = None) -> None:
        self.kernels.detach(kernel_id, connection_id, last_msg_id)

    def park(self, kernel_id: str, session_id: str, channel: str, frames: RawFrames) -> None:
        self.kernels.park(kernel_id, session_id, channel, frames)

    def replay(self, kernel_id: str, session_id: str, connection_id: str,
               first_live: str | None = None) -> Missed:
        return Missed.from_wire(*self.kernels.replay(kernel_id, session_id, connection_id, first_live))

    # HostAPI: cell runs --------------------------------------------------------------------

    def run_code(self, kernel_id: str, code: str, cell_id: str | None = None,
                 path: str | None = None) -> dict[str, Any]:
        return self.executions.run(kernel_id, code, cell_id, path)

    def get_run(self, kernel_id: str, run_id: str) -> dict[str, Any]:
        return self.executions.get(kernel_id, run_id)

    def list_runs(self, kernel_id: str, cell_id: str | None = None) -> list[dict[str, Any]]:
        return self.executions.list(kernel_id, cell_id)

    def follow_run(self, kernel_id: str, run_id: str, known: dict[str, Any] | None, after: int,
                   timeout: float) -> dict[str, Any]:
        return self.executions.follow(kernel_id, run_id, known, after, timeout)

    def runs_to_save(self, interval: float, worker: WorkerPid = 0) -> list[dict[str, Any]]:
        return self.executions.to_save(worker, interval)

    def run_saved(self, kernel_id: str, run_id: str, version: int, worker: WorkerPid = 0) -> None:
        self.executions.saved(kernel_id, run_id, version, worker)

    # HostAPI: sessions ---------------------------------------------------------------------

    def list_sessions(self) -> list[dict[str, Any]]:
        return self.sessions.list()

    def get_session(self, session_id: str) -> dict[str, Any]:
        return self.sessions.model(self.sessions.get(session_id))

    def create_session(self, path: str, name: str, type: str, kernel: dict[str, Any]) -> dict[str, Any]:
        return self.sessions.create(path, name, type, kernel)

    def update_session(self, session_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.sessions.update(session_id, changes)

    def delete_session(self, session_id: str) -> None:
        self.sessions.delete(session_id)

    # HostAPI: terminals --------------------------------------------------------------------

    def list_terminals(self) -> list[dict[str, Any]]:
        return self.terminals.models()

    def create_terminal(self, name: str | None = None, cwd: str | None = None) -> dict[str, Any]:
        return self.terminals.create(name, cwd)

    def get_terminal(self, name: str) -> dict[str, Any]:
        return self.terminals.model(name)

    def delete_terminal(self, name: str) -> None:
        self.terminals.shutdown(name)

    def terminal_attach(self, name: str, connection_id: str, worker: WorkerPid = 0) -> dict[str, Any]:
        return self.terminals.attach(name, connection_id, worker)

    def terminal_detach(self, name: str, connection_id: str) -> None:
        self.terminals.detach(name, connection_id)

    def terminal_input(self, name: str, data: str) -> None:
        self.terminals.write(name, data)

    def terminal_resize(self, name: str, connection_id: str, rows: int, cols: int) -> None:
        self.terminals.resize(name, connection_id, rows, cols)

    # HostAPI: server -----------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        return self.kernels.counts()

    # HostNotices ---------------------------------------------------------------------------

    def progress(self, kernel_id: str, connection_ids: list[str], header: RawFrame) -> None:
        self.kernels.progress(kernel_id, connection_ids, header)

    def executing(self, kernel_id: str, cell_id: str | None, header: RawFrame) -> None:
        self.kernels.executing(kernel_id, cell_id, header)

    # Serving -------------------------------------------------------------------------------

    def prune_forever(self) -> None:
        """Forget the kernel and terminal websockets of web workers that died (SIGKILL, OOM)."""
        import gevent

        while True:
            gevent.sleep(PRUNE_INTERVAL)
            self.kernels.prune_connections()
            self.terminals.prune_connections()

    def watch_owner(self) -> None:
        import gevent

        from .. import runtime

        while self.owner_pid and not self.stopping.is_set():
            if not runtime.pid_alive(self.owner_pid):
                log.warning("the server (pid %d) is gone: stopping its kernels", self.owner_pid)
                self.stopping.set()
            gevent.sleep(0.5)

    def serve(self) -> None:
        import gevent
        import zmq

        from .. import runtime
        from ..protocol import zmqlib
        from ..protocol.hostpaths import SERVICE, HostPaths

        directory = runtime.runtime_dir()
        service = self.settings.kernels.host == SERVICE
        paths = HostPaths(directory, SERVICE if service else self.owner_pid or os.getppid())
        held = self.hold_service_lock(paths) if service else None
        for stale in (paths.control_file, paths.events_file):
            stale.unlink(missing_ok=True)
        self.kernels.take_over()
        self.sessions.restore()
        router = zmqlib.socket(zmq.ROUTER, bind=paths.control_url)
        self.events = zmqlib.socket(zmq.PUB, bind=paths.events_url, SNDHWM=0)
        os.chmod(paths.control_file, 0o600)
        os.chmod(paths.events_file, 0o600)
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, self.stopping.set)
        helpers = [gevent.spawn(self.watch_owner), gevent.spawn(self.kernels.cull_forever),
                   gevent.spawn(self.prune_forever), gevent.spawn(self.terminals.cull_forever)]

        def receive() -> None:
            for frames in zmqlib.messages(router):
                gevent.spawn(self.handle, router, frames)

        helpers.append(gevent.spawn(receive))
        runtime.write_private(paths.info_file, json.dumps({"pid": os.getpid()}).encode())
        log.info("kernel host %d listening on %s", os.getpid(), paths.control_url)
        try:
            self.stopping.wait()
        finally:
            log.info("kernel host stopping: shutting down %d kernels", len(self.kernels.kernels))
            self.kernels.shutdown_all()
            self.terminals.shutdown_all()
            gevent.killall(helpers, block=False)
            router.close()
            self.events.close()
            for path in (paths.info_file, paths.control_file, paths.events_file, paths.lock_file):
                path.unlink(missing_ok=True)
            if held is not None:
                held.close()

    @staticmethod
    def hold_service_lock(paths: Any) -> Any:
        """The service host's lock file, locked for as long as it runs: a second one refuses
        to start instead of taking the first one's sockets and kernels."""
        import fcntl

        lock = open(paths.lock_file, "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            try:
                pid = json.loads(paths.info_file.read_text())["pid"]
            except (OSError, ValueError, KeyError, TypeError):
                pid = "unknown"
            raise SystemExit(f"nbflask kernel-host: another kernel host service runs (pid {pid}) with"
                             f" the runtime folder {paths.directory}") from None
        return lock


def run(config: Mapping[str, Any], owner_pid: int | None = None) -> None:
    """Serve as the kernel host until stopped, then exit the process (gevent has patched it).

    `config` is what the web server's settings hand the host (host_client.host_config), shaped
    like the YAML file: the host rebuilds from it the same typed, checked Settings the web
    workers read (the environment was read by the server already, so it is not read again)."""
    from ..config import load_settings

    logging.basicConfig(level=logging.INFO, format="[nbflask kernel host %(levelname)s] %(message)s")
    HostServer(load_settings(config, environ={}), owner_pid).serve()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    from gevent import monkey

    monkey.patch_all()
    parser = argparse.ArgumentParser(prog="python -m nbflask.host.server", description=__doc__)
    parser.add_argument("--owner-pid", type=int, default=None,
                        help="the server process this host serves: stop when it is gone")
    parser.add_argument("--config", required=True,
                        help="JSON: the settings the host needs, shaped like the YAML file (host_config);"
                             " '-' reads it from stdin")
    args = parser.parse_args(argv)
    run(json.loads(sys.stdin.read() if args.config == "-" else args.config), args.owner_pid)


if __name__ == "__main__":
    main()
