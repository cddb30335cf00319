"""The `nbflask` command as users type it: errors, config init, profiles, list, stop, ports."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from live import BIN, TOKEN, free_port, start_nbflask

NBFLASK = str(BIN / "nbflask")


def nbflask(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([NBFLASK, *args], capture_output=True, text=True, timeout=60, **kwargs)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nbflask: error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def test_help_lists_every_command():
    result = nbflask("--help")
    assert result.returncode == 0
    for command in ("run", "config", "list", "stop", "doctor"):
        assert f"  {command} " in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["ftp://host/"], "'ftp://host/' is not an http:// or https:// URL with a host name"),
    (["https:///ipython/"], "is not an http:// or https:// URL with a host name"),
    (["https://host:99999/"], "'https://host:99999/' has an invalid port"),
    (["https://host/", "--cafile", "/nope/ca.pem"], "--cafile: no file at /nope/ca.pem"),
])
def test_doctor_refuses_what_it_cannot_check(args, message):
    assert message in one_error_line(nbflask("doctor", *args))


def test_doctor_says_when_nothing_listens():
    result = nbflask("doctor", f"http://127.0.0.1:{free_port()}/")
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL  tls       cannot connect to 127.0.0.1:")
    assert "fix: start the server" in result.stdout


BAD_CONFIGS = {
    "unknown key": ("server:\n  prot: 9999\n", "server.prot", "did you mean 'port'"),
    "wrong type": ("server:\n  port: lots\n", "server.port: expected an integer", "'lots'"),
    "missing certificate": ("server:\n  certfile: /nope/mycert.pem\n", "server.certfile", "/nope/mycert.pem"),
    "bad base_url": ("server:\n  base_url: ipython\n", "server.base_url", "'ipython'"),
    "broken YAML": ("server: [\n", "not valid YAML", "line"),
}


@pytest.mark.parametrize("kind", BAD_CONFIGS)
def test_bad_config_is_one_line_and_exit_2(tmp_path, kind):
    text, *expected = BAD_CONFIGS[kind]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    line = one_error_line(nbflask("run", "--config", str(path), "--no-browser"))
    assert str(path) in line
    for fragment in expected:
        assert fragment in line


def test_bad_flag_value_names_the_flag():
    line = one_error_line(nbflask("run", "--base-url", "no-slash", "--no-browser"))
    assert "--base-url: server.base_url" in line


def test_flask_run_reports_a_bad_config_the_same_way(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("auth:\n  tokn: x\n")
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "nbflask", "run", "--port", str(free_port())],
        capture_output=True, text=True, timeout=60, env={**os.environ, "NBFLASK_CONFIG": str(path)},
    )
    assert result.returncode == 2
    assert "auth.tokn" in result.stderr and "did you mean 'token'" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_init_writes_every_option_with_its_default(tmp_path):
    path = tmp_path / "deploy.yaml"
    assert nbflask("config", "init", str(path)).returncode == 0
    written = yaml.safe_load(path.read_text())
    assert written["server"]["port"] == 8888 and written["store"]["class"] == "file"
    assert "# PEM certificate" in path.read_text()
    assert "already exists" in one_error_line(nbflask("config", "init", str(path)))
    assert nbflask("config", "init", str(path), "--force").returncode == 0


@pytest.mark.slow
def test_profile_made_by_config_init_is_used_by_run(tmp_path):
    assert nbflask("config", "init", "--profile", "nbserver").returncode == 0
    profile = Path(os.environ["NBFLASK_CONFIG_DIR"]) / "profiles" / "nbserver.yaml"
    settings = yaml.safe_load(profile.read_text())
    port = free_port()
    settings["server"].update(port=port, open_browser=False)
    settings["auth"]["token"] = TOKEN
    settings["store"]["root_dir"] = str(tmp_path)
    profile.write_text(yaml.safe_dump(settings))
    proc = subprocess.Popen([NBFLASK, "run", "--profile", "nbserver"], stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if "/?token=" in line:
                break
        auth = {"Authorization": f"token {TOKEN}"}
        response = requests.get(f"http://127.0.0.1:{port}/api/status", headers=auth, timeout=10)
        assert response.status_code == 200
    finally:
        proc.terminate()
        proc.wait(15)


def test_missing_profile_says_how_to_make_it():
    line = one_error_line(nbflask("run", "--profile", "ghost"))
    assert "nbflask config init --profile ghost" in line


@pytest.mark.slow
def test_list_and_stop(tmp_path):
    server = start_nbflask(tmp_path)
    try:
        listed = [json.loads(line) for line in nbflask("list", "--json").stdout.splitlines()]
        assert [info["port"] for info in listed] == [server.port]
        assert listed[0]["url"] == server.url
        human = nbflask("list").stdout
        assert f"{server.url}?token={TOKEN}" in human
        result = nbflask("stop", str(server.port))
        assert result.returncode == 0, result.stderr
        assert server.proc.wait(10) == 0
        assert nbflask("list", "--json").stdout == ""
        assert "no running server on port" in one_error_line(nbflask("stop", str(server.port)))
    finally:
        server.stop()


def test_list_prunes_info_files_of_dead_servers():
    runtime = Path(os.environ["NBFLASK_RUNTIME_DIR"])
    getpid = [sys.executable, "-c", "import os; print(os.getpid())"]
    dead = subprocess.run(getpid, capture_output=True, text=True)
    stale = runtime / f"server-{dead.stdout.strip()}.json"
    stale.write_text(json.dumps({"pid": int(dead.stdout), "port": 1, "url": "http://x/"}))
    assert nbflask("list", "--json").stdout == ""
    assert not stale.exists()


def busy_port_before_a_free_one() -> socket.socket:
    """A socket listening on a port whose next one is free as far as anyone can tell
    (free_port's own guarantee): a port the OS hands out may well have a taken neighbour."""
    while True:
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        if blocker.getsockname()[1] < 65535:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", blocker.getsockname()[1] + 1))
                except OSError:
                    pass
                else:
                    blocker.listen()
                    return blocker
        blocker.close()


@pytest.mark.slow
def test_busy_port_moves_to_the_next_one(tmp_path):
    with busy_port_before_a_free_one() as blocker:
        busy = blocker.getsockname()[1]
        with start_nbflask(tmp_path, {"server": {"port": busy}}, expect_port=busy + 1) as server:
            assert server.get("api/status").status_code == 200
            assert f"The port {busy} is already in use" in server.log()


@pytest.mark.slow
def test_ip_star_listens_on_ipv4_and_ipv6(tmp_path):
    if not socket.has_ipv6:
        pytest.fail("this machine has no IPv6; the test needs ::1")
    with start_nbflask(tmp_path, {"server": {"ip": "*"}}) as server:
        for host in ("127.0.0.1", "[::1]"):
            response = requests.get(f"http://{host}:{server.port}/api", timeout=10)
            assert response.status_code == 200


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_removes_the_info_file(tmp_path):
    server = start_nbflask(tmp_path)
    runtime = Path(os.environ["NBFLASK_RUNTIME_DIR"])
    assert (runtime / f"server-{server.proc.pid}.json").exists()
    assert server.stop(signal.SIGTERM) == 0
    assert not (runtime / f"server-{server.proc.pid}.json").exists()


@pytest.mark.slow
def test_plain_pip_install_ships_templates_and_static(tmp_path):
    """A non-editable install in a fresh venv serves the pages from its own copy."""
    repo = Path(__file__).resolve().parents[2]
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(repo)],
        check=True, capture_output=True,
    )
    (wheel,) = wheels.glob("nbflask-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        check=True, capture_output=True,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    # Dependencies come from the test venv; nbflask itself only from the fresh install.
    deps = subprocess.run(
        [sys.executable, "-c", "import flask, os; print(os.path.dirname(os.path.dirname(flask.__file__)))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    (Path(site) / "deps.pth").write_text(deps + "\n")
    installed = subprocess.run(
        [str(python), "-c", "import nbflask; print(nbflask.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout
    assert installed.startswith(site)
    with start_nbflask(tmp_path, command=str(venv / "bin" / "nbflask")) as server:
        page = requests.get(server.url + f"tree/?token={TOKEN}", timeout=10)
        assert page.status_code == 200 and 'id="jupyter-config-data"' in page.text
        script = re.search(r'<script defer src="/(static/notebook/main\.[0-9a-f]+\.js)', page.text)
        assert script and requests.get(server.url + script.group(1), timeout=10).status_code == 200
        for asset in ("style.css", "favicon.svg"):
            assert requests.get(server.url + "static/" + asset, timeout=10).status_code == 200
        assert "login" in requests.get(server.url + "login", timeout=10).text
        lab = requests.get(server.url + f"lab?token={TOKEN}", timeout=10).text
        config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', lab, re.S).group(1))
        ours = [e for e in config["federated_extensions"] if e["name"] == "@nbflask/recorded-outputs"]
        assert ours, "nbflask's own front-end extension is not in the wheel"
        entry = server.url + f"lab/extensions/@nbflask/recorded-outputs/{ours[0]['load']}"
        assert requests.get(entry, timeout=10).status_code == 200


@pytest.mark.slow
def test_open_browser_opens_the_dashboard_with_the_token(tmp_path):
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    config = {"server": {"open_browser": True, "base_url": "/ipython/"}}
    with start_nbflask(tmp_path, config, env={"BROWSER": str(browser)}) as server:
        deadline = time.monotonic() + 20
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert opened.read_text().strip() == f"{server.url}?token={TOKEN}"


def test_unreadable_certificate_is_one_line(tmp_path):
    bad = tmp_path / "mycert.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    line = one_error_line(nbflask("run", "--certfile", str(bad), "--no-browser", "--port", "0"))
    assert "server.certfile: cannot load certificate and key" in line and str(bad) in line


@pytest.mark.slow
def test_certificate_and_key_in_separate_files(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-nodes", "-days", "2", "-newkey", "rsa:2048", "-keyout", str(key),
         "-out", str(cert), "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    config = {"server": {"certfile": str(cert), "keyfile": str(key)}}
    with start_nbflask(tmp_path, config, cert=cert) as server:
        assert server.url.startswith("https://")
        assert server.get("api/status").status_code == 200
