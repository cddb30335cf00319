"""The kernel host (sidecar): `python -m nbflask.host.server`, one per deployment.

It owns the kernel processes and the kernel and session registries, and answers the web
workers on a ZeroMQ ROUTER socket in the private runtime folder (JSON requests, one greenlet
each). Lifecycle news that workers cannot see on the kernels' own sockets (a kernel died and
is restarting, is dead, was shut down, a websocket was replaced) goes out on a PUB socket,
topic = kernel id. It owns the deployment's terminals too (nbflask.host.terminals): their
output goes out on the same PUB socket, topic `term:<name>/`. It stops, and stops its kernels
and terminals, on SIGTERM/SIGINT and when the server process that owns it (its parent, or the
gunicorn master a worker started it for) goes away, even by SIGKILL. The service host
(`nbflask kernel-host`, `kernels.host: service`) has no owner: it runs until SIGTERM, its
kernels outlive it if it dies, and the next service host adopts them. A reply is one JSON
frame, followed by raw frames for the operations that hand over kernel messages (replay);
a request that hands one over (park) is followed by its frames likewise.
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

log = logging.getLogger(__name__)

PRUNE_INTERVAL = 2.0  # seconds between checks for websockets whose web worker died


class Host:
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

    def operations(self) -> dict[str, Any]:
        kernels, sessions, terminals = self.kernels, self.sessions, self.terminals
        executions = self.executions
        return {
            "counts": kernels.counts,
            "list_kernels": kernels.models,
            "start_kernel": lambda name=None, path=None, kernel_id=None: kernels.start(
                name, path, kernel_id).model(),
            "get_kernel": lambda kernel_id: kernels.get(kernel_id).model(),
            "shutdown_kernel": kernels.shutdown,
            "interrupt_kernel": kernels.interrupt,
            "restart_kernel": lambda kernel_id: kernels.restart(kernel_id).model(),
            "connection_info": kernels.connection_info,
            "attach": kernels.attach,
            "wait_settled": kernels.wait_settled,
            "hello": lambda topic, connection_id: self.publish(
                topic, {"event": "hello", "connection_id": connection_id}),
            "detach": kernels.detach,
            "replay": kernels.replay,
            "park": kernels.park,  # the reply's frames follow the request (`frames`)
            "run_code": executions.run,
            "get_run": executions.get,
            "list_runs": executions.list,
            "follow_run": executions.follow,
            "runs_to_save": executions.to_save,
            "run_saved": executions.saved,
            "list_sessions": sessions.list,
            "get_session": lambda session_id: sessions.model(sessions.get(session_id)),
            "create_session": sessions.create,
            "update_session": sessions.update,
            "delete_session": sessions.delete,
            "list_terminals": terminals.models,
            "create_terminal": terminals.create,
            "get_terminal": terminals.model,
            "delete_terminal": terminals.shutdown,
            "terminal_attach": terminals.attach,
            "terminal_detach": terminals.detach,
            "terminal_input": terminals.write,
            "terminal_resize": terminals.resize,
        }

    def notices(self) -> dict[str, Any]:
        """Operations that get no reply, each with one raw frame after the request."""
        return {"progress": self.kernels.progress, "executing": self.kernels.executing}

    def handle(self, router: Any, frames: list[bytes]) -> None:
        from ..api_error import APIError
        from ..protocol import wire

        identity, body, *attached = frames
        extra: list[bytes] = []
        try:
            request = json.loads(body)
            if request.get("op") in self.notices():
                self.notices()[request["op"]](**request["args"], header=attached[0])
                return
            operation = self.operations()[request["op"]]
            args = dict(request.get("args", {}))
            if attached:  # raw frames after the request: a kernel message handed over (park)
                args["frames"] = attached
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            reply = {"ok": False, "status": 400, "message": f"bad kernel host request: {exc!r}",
                     "reason": "BadHostRequest"}
        else:
            try:
                result = operation(**args)
                if isinstance(result, tuple):  # (result, raw frames)
                    result, extra = result
                reply = {"ok": True, "result": result}
            except APIError as exc:
                reply = {"ok": False, "status": exc.status, "message": exc.message, "reason": exc.reason}
            except Exception as exc:
                log.exception("kernel host request %s failed", request["op"])
                reply = {"ok": False, "status": 500, "message": f"kernel host error: {exc}",
                         "reason": type(exc).__name__}
        with self.send_lock:
            router.send_multipart([identity, wire.dumps(reply), *extra])

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
    Host(load_settings(config, environ={}), owner_pid).serve()
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
                        help="JSON: the settings the host needs, shaped like the YAML file (host_config)")
    args = parser.parse_args(argv)
    run(json.loads(args.config), args.owner_pid)


if __name__ == "__main__":
    main()
