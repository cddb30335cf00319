"""docs/deployment.md's walkthrough (section 6), run as written: real openssl, gunicorn with
gevent workers, nginx and a kernel, checked at the end by `nbflask doctor`.

The blocks marked `walkthrough` run verbatim in bash, each after the settings the test gives
in place of the `walkthrough-settings` block (a temporary folder, free ports, `localhost`,
this test's Python environment as VENV), with HOME in the temporary folder. The block marked
`walkthrough-background` is the server, left running. The unmarked blocks are those that
need root or systemd; each has a stand-in here (STAND_INS), and a block the test does not
know fails it, so the document and the test cannot drift apart.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from live import free_port
from proxy import NGINX, REPO, Nginx
from tools import needs_package

pytestmark = [pytest.mark.slow, needs_package(NGINX, "nginx-light")]

DOC = REPO / "docs" / "deployment.md"
SECTION = "## 6. From nothing to a public server"
FENCE = re.compile(r"^```bash ?([\w-]*)\n(.*?)^```$", re.M | re.S)
PASSWORD = "a long walkthrough password"
# What stands in for each unmarked block: the install (this test's environment is VENV), nginx's
# reload (an nginx of the test's own with the site file), the systemd units (verified apart).
STAND_INS = ("apt-get install", "systemctl reload nginx", "systemctl enable")


def walkthrough_blocks() -> list[tuple[str, str]]:
    """(marker, commands) of each bash block in section 6, in order."""
    text = DOC.read_text()
    section = text[text.index(SECTION):]
    following = section.find("\n## ", len(SECTION))
    return FENCE.findall(section[:following] if following > 0 else section)


class Walk:
    """The walkthrough's settings for this test, and how to run a block with them."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.https_port = free_port()
        self.values = {
            "DOMAIN": "localhost",
            "PREFIX": "/ipython",
            "SITE": str(tmp_path / "srv"),
            "VENV": sys.prefix,
            "NBFLASK_SOURCE": str(REPO),
            "BACKEND_PORT": str(free_port()),
            "LISTEN": f"127.0.0.1:{self.https_port}",
            "NGINX_SITE": str(tmp_path / "nginx" / "site.conf"),
            "PUBLIC_URL": f"https://localhost:{self.https_port}/ipython/",
        }
        home = tmp_path / "home"
        home.mkdir()
        self.env = {**os.environ, "HOME": str(home)}

    @property
    def site(self) -> Path:
        return Path(self.values["SITE"])

    def script(self, commands: str) -> str:
        settings = "".join(f"{name}={shlex.quote(value)}\n" for name, value in self.values.items())
        return "set -euo pipefail\n" + settings + commands

    def run(self, commands: str) -> subprocess.CompletedProcess:
        """Run a block away from any terminal: prompts (passwords) read the test's stdin."""
        typed = f"{PASSWORD}\n{PASSWORD}\n" if " passwd " in commands else f"{PASSWORD}\n"
        return subprocess.run(["bash", "-c", self.script(commands)], input=typed, capture_output=True,
                              text=True, env=self.env, cwd=self.tmp_path, timeout=120, start_new_session=True)

    def start(self, commands: str) -> subprocess.Popen:
        log = open(self.tmp_path / "background.log", "wb")
        return subprocess.Popen(["bash", "-c", self.script(commands)], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=self.env, cwd=self.tmp_path,
                                start_new_session=True)

    def wait_for_backend(self, server: subprocess.Popen) -> None:
        url = f"http://127.0.0.1:{self.values['BACKEND_PORT']}{self.values['PREFIX']}/api"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, (self.tmp_path / "background.log").read_text()
            try:
                if requests.get(url, timeout=5).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or a worker still booting
                pass
            time.sleep(0.2)
        raise AssertionError("gunicorn never answered:\n" + (self.tmp_path / "background.log").read_text())


def test_the_settings_block_names_what_the_test_sets(tmp_path):
    (marker, commands), *_ = walkthrough_blocks()
    assert marker == "walkthrough-settings"
    assert re.findall(r"^([A-Z_]+)=", commands, re.M) == list(Walk(tmp_path).values)


def test_the_walkthrough_as_written(tmp_path):
    walk = Walk(tmp_path)
    server: subprocess.Popen | None = None
    nginx: Nginx | None = None
    doctor_output = ""
    try:
        for marker, commands in walkthrough_blocks()[1:]:
            if marker == "walkthrough":
                done = walk.run(commands)
                assert done.returncode == 0, f"{commands}\n{done.stdout}\n{done.stderr}"
                if "doctor" in commands:
                    doctor_output = done.stdout
            elif marker == "walkthrough-background":
                server = walk.start(commands)
                walk.wait_for_backend(server)
            elif marker == "walkthrough-systemd":
                continue  # test_the_systemd_units_verify
            else:
                assert marker == "", f"unknown marker {marker!r}"
                stand_in = [name for name in STAND_INS if name in commands]
                assert stand_in, f"a block the test has no stand-in for:\n{commands}"
                if stand_in == ["systemctl reload nginx"]:
                    cert = walk.site / "tls" / "cert.pem"
                    nginx = Nginx(tmp_path / "nginx", (walk.site / "nginx-site.conf").read_text(),
                                  walk.values["PUBLIC_URL"], cert)
    finally:
        if nginx:
            nginx.stop()
        if server:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    assert server is not None and nginx is not None
    lines = [line for line in doctor_output.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(lines) == 7 and all(line.startswith("PASS") for line in lines), doctor_output
    assert "the password logs in" in doctor_output
    settings = yaml.safe_load((walk.site / "nbflask.yaml").read_text())
    assert settings["auth"]["password"].startswith("argon2:")  # `nbflask passwd` wrote the hash


def test_the_systemd_units_verify(tmp_path):
    (commands,) = [commands for marker, commands in walkthrough_blocks() if marker == "walkthrough-systemd"]
    done = Walk(tmp_path).run(commands)
    assert done.returncode == 0, done.stdout + done.stderr
