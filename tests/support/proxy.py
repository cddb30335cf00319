"""A real nginx in front of a test's backend: its own prefix folder, pid, logs and port.

`site` is the text of one nginx `server { }` block (plus whatever it needs at http level),
as an operator would include it; `start_nginx` wraps it in a main config of its own and
waits until nginx answers.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import requests
from live import free_port
from tools import program

REPO = Path(__file__).resolve().parents[2]
NGINX = program("nginx", "/usr/sbin/nginx")


def example_site(port: int, upstream: int, cert: Path) -> str:
    """config/nginx.conf, listening on loopback `port` with `cert`, forwarding to `upstream`."""
    text = (REPO / "config" / "nginx.conf").read_text()
    for old, new in {
        "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        "server 127.0.0.1:8888;": f"server 127.0.0.1:{upstream};",
        "/etc/ssl/certs/notebooks.pem": str(cert),
        "/etc/ssl/private/notebooks.key": str(cert),
    }.items():
        assert old in text, f"config/nginx.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


class Nginx:
    """nginx running `site` from `directory`; `stop()` ends it."""

    def __init__(self, directory: Path, site: str, url: str, cert: Path | None) -> None:
        assert NGINX, "nginx is not installed: apt-get install nginx-light"
        self.url = url
        self.cert = cert
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "site.conf").write_text(site)
        temp = directory / "temp"
        temp.mkdir(exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        temp_paths = "".join(f"  {kind}_temp_path {temp}/{kind};\n" for kind in kinds)
        (directory / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {directory}/nginx.pid;\n"
            f"error_log {directory}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n{temp_paths}"
            f"  include {directory}/site.conf;\n}}\n"
        )
        self.proc = subprocess.Popen([NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")])
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(url, verify=str(cert) if cert else True, timeout=5)
                return
            except requests.RequestException:  # not listening yet, or its backend still booting
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def start_example_nginx(directory: Path, upstream: int, cert: Path) -> Nginx:
    """The project's config/nginx.conf for real, in front of `upstream`, at /ipython/."""
    port = free_port()
    return Nginx(directory, example_site(port, upstream, cert), f"https://127.0.0.1:{port}/ipython/", cert)
