"""Real servers for end-to-end tests: `nbflask run`, `flask --app nbflask run`, gunicorn.

Each runs as a subprocess on a free loopback port with the test's own config file, runtime
folder and log file; `stop()` (or leaving the context) ends it and anything it left in its
process group, so no test leaves a server or a kernel behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml

from nbflask import security

TOKEN = "live-token-0123456789abcdef"
BIN = Path(sys.executable).parent


def session_cookie_name(url: str) -> str:
    """The session cookie a browser gets from the server it reaches at `url` (a page under
    its prefix): the name carries that host, port and prefix."""
    parts = urlsplit(url)
    prefix = "/".join(parts.path.split("/")[:-1])
    return security.session_cookie_name(security.cookie_scope(parts.netloc, prefix))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_cert(directory: Path, name: str = "mycert.pem", days: int = 30) -> Path:
    """A self-signed certificate and key in one PEM, as the seed's openssl recipe makes it,
    plus subjectAltNames so clients can verify it on loopback."""
    path = directory / name
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", str(days), "-newkey", "rsa:2048",
            "-keyout", str(path), "-out", str(path), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
        ],
        check=True,
        capture_output=True,
    )
    return path


class LiveServer:
    """A server subprocess and how to talk to it."""

    def __init__(
        self,
        argv: list[str],
        url: str,
        *,
        token: str | None = TOKEN,
        cert: Path | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        log: Path,
        timeout: float = 60,
    ) -> None:
        self.argv = argv
        self.url = url
        self.token = token
        self.cert = cert
        self.log_path = log
        self._log = open(log, "ab")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        self._wait_ready(timeout)

    @property
    def verify(self) -> str | bool:
        return str(self.cert) if self.cert else True

    @property
    def port(self) -> int:
        return int(self.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if requests.get(self.url + "api", verify=self.verify, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log()[-3000:]}")

    def session(self) -> requests.Session:
        """A requests session that authenticates with the token header, like an API client."""
        client = requests.Session()
        client.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify
        client.verify = self.verify
        if self.token:
            client.headers["Authorization"] = f"token {self.token}"
        return client

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session().get(self.url + path, timeout=30, **kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Signal the server, wait for it, then clear its process group; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if not self._log.closed:
            self._log.close()
        return self.proc.returncode

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def own_folders(directory: Path) -> dict[str, str]:
    """Environment giving a server started by a module-scoped fixture its own runtime, user
    data and user config folders: such fixtures run before the per-test isolation, and the
    user's real folders would carry workspaces and settings from one run into the next."""
    folders = {"NBFLASK_RUNTIME_DIR": "runtime", "NBFLASK_DATA_DIR": "userdata",
               "NBFLASK_CONFIG_DIR": "userconfig"}
    for name in folders.values():
        (directory / name).mkdir(mode=0o700, exist_ok=True)
    return {variable: str(directory / name) for variable, name in folders.items()}


def write_config(directory: Path, config: dict[str, Any], name: str = "nbflask.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _deployment(tmp_path: Path, config: dict[str, Any] | None, tls: bool) -> tuple[dict, Path | None, int]:
    merged: dict[str, Any] = {
        "server": {"ip": "127.0.0.1", "port": free_port(), "open_browser": False},
        "auth": {"token": TOKEN},
        "store": {"root_dir": str(tmp_path / "notebooks")},
    }
    for section, values in (config or {}).items():
        merged.setdefault(section, {}).update(values)
    Path(merged["store"].get("root_dir", tmp_path)).mkdir(parents=True, exist_ok=True)
    cert = make_cert(tmp_path) if tls else None
    if cert:
        merged["server"]["certfile"] = str(cert)
    return merged, cert, merged["server"]["port"]


def _url(config: dict[str, Any], port: int, tls: bool) -> str:
    base_url = config["server"].get("base_url", "/")
    if not base_url.endswith("/"):
        base_url += "/"
    return f"{'https' if tls else 'http'}://127.0.0.1:{port}{base_url}"


def start_nbflask(
    tmp_path: Path, config: dict[str, Any] | None = None, *, tls: bool = False,
    args: list[str] | None = None, env: dict[str, str] | None = None, expect_port: int | None = None,
    command: str | None = None, cert: Path | None = None,
) -> LiveServer:
    """`nbflask run --config <file>` with a fixed token on a free port.

    `expect_port`: where the server should end up after skipping busy ports; `command`: another
    `nbflask` executable (an installed copy); `cert`: the certificate to trust when `config`
    names its own certfile and keyfile.
    """
    merged, made, port = _deployment(tmp_path, config, tls)
    cert = cert or made
    path = write_config(tmp_path, merged)
    argv = [command or str(BIN / "nbflask"), "run", "--config", str(path), *(args or [])]
    return LiveServer(
        argv, _url(merged, expect_port or port, cert is not None), token=merged["auth"].get("token") or None,
        cert=cert, env=env, cwd=tmp_path, log=tmp_path / "server.log",
    )


def start_flask(
    tmp_path: Path, config: dict[str, Any] | None = None, *, tls: bool = False,
    env: dict[str, str] | None = None,
) -> LiveServer:
    """`NBFLASK_CONFIG=<file> flask --app nbflask run` (Flask's own server takes the cert flags)."""
    merged, cert, port = _deployment(tmp_path, config, tls)
    merged["server"].pop("certfile", None)
    path = write_config(tmp_path, merged)
    argv = [str(BIN / "flask"), "--app", "nbflask", "run", "--host", "127.0.0.1", "--port", str(port)]
    if cert:
        argv += ["--cert", str(cert), "--key", str(cert)]
    return LiveServer(
        argv, _url(merged, port, tls), token=merged["auth"].get("token") or None, cert=cert,
        env={"NBFLASK_CONFIG": str(path), **(env or {})}, cwd=tmp_path, log=tmp_path / "server.log",
    )


def start_gunicorn(
    tmp_path: Path, config: dict[str, Any] | None = None, *, tls: bool = False, workers: int = 3,
    args: list[str] | None = None, env: dict[str, str] | None = None, mount: str = "",
) -> LiveServer:
    """gunicorn with gevent workers and the project's `config/gunicorn.conf.py`.

    `mount`: the application root gunicorn mounts the app at (its SCRIPT_NAME), e.g. '/ipython'.
    """
    merged, cert, port = _deployment(tmp_path, config, tls)
    merged["server"].pop("certfile", None)
    path = write_config(tmp_path, merged)
    conf = Path(__file__).resolve().parents[2] / "config" / "gunicorn.conf.py"
    argv = [
        str(BIN / "gunicorn"), "-k", "gevent", "-w", str(workers), "-b", f"127.0.0.1:{port}",
        *(["-c", str(conf)] if conf.exists() else []),
        *(["--certfile", str(cert), "--keyfile", str(cert)] if cert else []),
        *(args or []), "nbflask:create_app()",
    ]
    url = _url(merged, port, tls)
    if mount:
        url = url.replace(f":{port}/", f":{port}{mount.rstrip('/')}/", 1)
        env = {"SCRIPT_NAME": mount.rstrip("/"), **(env or {})}
    return LiveServer(
        argv, url, token=merged["auth"].get("token") or None, cert=cert,
        env={"NBFLASK_CONFIG": str(path), **(env or {})}, cwd=tmp_path, log=tmp_path / "server.log",
    )


def run_doctor(url: str, *args: str, stdin: str = "") -> tuple[int, dict[str, str]]:
    """Run `nbflask doctor` (away from any terminal, so a password is read from `stdin`);
    its exit status and each check's line by name."""
    done = subprocess.run([str(BIN / "nbflask"), "doctor", url, *args], input=stdin, capture_output=True,
                          text=True, timeout=120, start_new_session=True)
    assert "Traceback" not in done.stderr, done.stderr
    lines = {}
    for line in done.stdout.splitlines():
        if line.startswith(("PASS", "FAIL")):
            lines[line.split()[1]] = line
    return done.returncode, lines


def workers_serving(master_pid: int, port: int) -> set[int]:
    """Pids of the gunicorn workers holding an open connection on the server's port."""
    import psutil

    serving = set()
    for child in psutil.Process(master_pid).children():
        if "nbflask.host.server" in " ".join(child.cmdline()):
            continue
        if any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
               for c in child.net_connections(kind="tcp")):
            serving.add(child.pid)
    return serving


def fresh_request(method: str, url: str) -> requests.Response:
    """A request on a new TCP connection, so any gunicorn worker may take it."""
    headers = {"Authorization": f"token {TOKEN}", "Connection": "close"}
    return requests.request(method, url, headers=headers, timeout=60)
