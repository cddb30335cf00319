"""`nbflask doctor` against real deployments, healthy and deliberately broken: gunicorn with
gevent workers and a certificate made here, the project's nginx set-up, real kernels."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from live import TOKEN, free_port, make_cert, start_gunicorn, start_nbflask
from live import run_doctor as doctor
from proxy import NGINX, REPO, Nginx, example_site
from tools import needs_package

from nbflask.passwords import hash_password

pytestmark = pytest.mark.slow
needs_nginx = needs_package(NGINX, "nginx-light")
CHECKS = ("tls", "server", "auth", "base_url", "cookies", "websocket", "kernel")


def passed(lines: dict[str, str]) -> list[str]:
    return [name for name, line in lines.items() if line.startswith("PASS")]


@contextmanager
def behind_nginx(tmp_path: Path, settings: dict | None = None,
                 site: Callable[[str], str] = lambda text: text) -> Iterator[tuple[str, Path]]:
    """gunicorn with config/behind-proxy.yaml (changed by `settings`) behind config/nginx.conf
    (changed by `site`); yields the public URL and the certificate to trust."""
    config = yaml.safe_load((REPO / "config" / "behind-proxy.yaml").read_text())
    config["server"].pop("port")
    config["store"]["root_dir"] = str(tmp_path / "notebooks")
    config["auth"]["token"] = TOKEN
    for section, values in (settings or {}).items():
        config[section].update(values)
    with start_gunicorn(tmp_path, config, workers=2) as backend:
        cert = make_cert(tmp_path, "nginx.pem", days=90)
        port = free_port()
        nginx = Nginx(tmp_path / "nginx", site(example_site(port, backend.port, cert)),
                      f"https://127.0.0.1:{port}/ipython/", cert)
        try:
            yield nginx.url, cert
        finally:
            nginx.stop()


def without(*lines: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        for line in lines:
            assert line in text
            text = text.replace(line, "")
        return text
    return edit


@needs_nginx
def test_a_healthy_deployment_behind_nginx_passes_every_check(tmp_path):
    with behind_nginx(tmp_path) as (url, cert):
        status, lines = doctor(url, "--token", TOKEN, "--cafile", str(cert))
    assert passed(lines) == list(CHECKS), lines
    assert status == 0
    assert "certificate for DNS:localhost" in lines["tls"] and "valid until" in lines["tls"]
    assert "Path=/ipython/, Secure" in lines["cookies"]
    assert "kernel_info_reply (python)" in lines["kernel"]


def test_the_token_may_come_in_the_url_as_servers_print_it(tmp_path):
    with start_gunicorn(tmp_path, {"server": {"base_url": "/ipython/"}}, tls=True, workers=1) as server:
        status, lines = doctor(server.url + f"?token={TOKEN}", "--cafile", str(server.cert))
        assert (status, passed(lines)) == (0, list(CHECKS)), lines
        # Without a token the kernel cannot be checked, and the exit status says so.
        status, lines = doctor(server.url, "--cafile", str(server.cert))
    assert status == 1
    assert passed(lines) == ["tls", "server", "auth", "base_url", "cookies"]
    assert "run again with --token" in lines["kernel"]


def test_a_password_logs_in_as_the_login_form_does(tmp_path):
    config = {"auth": {"token": "", "password": hash_password("correct horse")}}
    with start_gunicorn(tmp_path, config, tls=True, workers=1) as server:
        status, lines = doctor(server.url, "--password", "--cafile", str(server.cert),
                               stdin="correct horse\n")
        assert (status, passed(lines)) == (0, list(CHECKS)), lines
        assert "the password logs in" in lines["auth"]
        status, lines = doctor(server.url, "--password", "--cafile", str(server.cert), stdin="wrong\n")
    assert status == 1
    assert "the password did not log in" in lines["auth"] and "nbflask passwd" in lines["auth"]
    assert "not checked" in lines["kernel"]


@needs_nginx
def test_nginx_without_the_upgrade_headers(tmp_path):
    site = without("proxy_set_header Upgrade $http_upgrade;",
                   "proxy_set_header Connection $connection_upgrade;")
    with behind_nginx(tmp_path, site=site) as (url, cert):
        status, lines = doctor(url, "--token", TOKEN, "--cafile", str(cert))
    assert status == 1
    assert passed(lines) == ["tls", "server", "auth", "base_url", "cookies"]
    assert lines["websocket"].startswith("FAIL")
    assert "dropped the Upgrade and Connection headers" in lines["websocket"]
    assert "proxy_set_header Upgrade $http_upgrade" in lines["websocket"]


@needs_nginx
def test_a_proxy_that_strips_the_prefix_without_saying_so(tmp_path):
    settings = {"server": {"base_url": "/"}}
    site = lambda text: text.replace("proxy_pass http://nbflask;", "proxy_pass http://nbflask/;")  # noqa: E731
    with behind_nginx(tmp_path, settings, site) as (url, cert):
        status, lines = doctor(url, "--token", TOKEN, "--cafile", str(cert))
    assert status == 1
    assert lines["server"].startswith("PASS")  # the API is reachable through the proxy ...
    assert lines["base_url"].startswith("FAIL")  # ... but the server's links leave the prefix
    assert "redirects go to /login" in lines["base_url"] and "X-Forwarded-Prefix" in lines["base_url"]


@needs_nginx
@pytest.mark.parametrize("broken", ["proxy does not say", "server does not trust"])
def test_tls_at_the_proxy_but_the_server_thinks_http(tmp_path, broken):
    settings, site = {}, without("proxy_set_header X-Forwarded-Proto $scheme;")
    if broken == "server does not trust":
        settings, site = {"server": {"trust_xheaders": False}}, without()
    with behind_nginx(tmp_path, settings, site) as (url, cert):
        status, lines = doctor(url, "--token", TOKEN, "--cafile", str(cert))
    assert status == 1
    assert "is not Secure although the browser uses https" in lines["cookies"]
    assert "trust_xheaders: true" in lines["cookies"]


def test_a_wrong_prefix(tmp_path):
    with start_gunicorn(tmp_path, {"server": {"base_url": "/ipython/"}}, tls=True, workers=1) as server:
        status, lines = doctor(server.url.replace("/ipython/", "/jupyter/"), "--token", TOKEN,
                               "--cafile", str(server.cert))
    assert status == 1
    assert list(lines) == ["tls", "server"]  # nothing more to look at under /jupyter/
    assert "the server is at /ipython/" in lines["server"]


def test_plain_http_where_tls_is_expected(tmp_path):
    with start_gunicorn(tmp_path, workers=1) as server:
        status, lines = doctor(server.url.replace("http://", "https://"), "--token", TOKEN)
    assert status == 1
    assert list(lines) == ["tls"]
    assert "answers in plain HTTP, not TLS" in lines["tls"] and "--certfile" in lines["tls"]


def test_an_untrusted_certificate(tmp_path):
    with start_gunicorn(tmp_path, tls=True, workers=1) as server:
        status, lines = doctor(server.url, "--token", TOKEN)  # no --cafile: the system's CAs
    assert status == 1
    assert "not trusted: self-signed certificate" in lines["tls"] and "--cafile" in lines["tls"]


def test_a_certificate_about_to_expire(tmp_path):
    cert = make_cert(tmp_path, "short.pem", days=2)
    with start_nbflask(tmp_path, {"server": {"certfile": str(cert)}}, cert=cert) as server:
        status, lines = doctor(server.url, "--token", TOKEN, "--cafile", str(cert))
    assert status == 1
    assert lines["tls"].startswith("FAIL") and "renew the certificate" in lines["tls"]
    assert passed(lines) == list(CHECKS[1:])  # the rest still works, and is still checked
