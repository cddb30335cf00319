"""The real commands users run, as subprocesses on free ports, over HTTP and HTTPS."""

from __future__ import annotations

import signal

import pytest
import requests
from live import TOKEN, start_flask, start_nbflask

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_nbflask_run_serves_api_and_pages(tmp_path, tls):
    with start_nbflask(tmp_path, tls=tls) as server:
        assert server.url.startswith("https://" if tls else "http://")
        assert server.get("api").json()["version"]
        status = server.get("api/status")
        assert status.status_code == 200 and set(status.json()) >= {"started", "kernels"}
        anonymous = requests.get(server.url + "api/status", verify=server.verify, timeout=10)
        assert anonymous.status_code == 403
        page = requests.get(server.url + "tree/?token=" + TOKEN, verify=server.verify, timeout=10)
        assert page.status_code == 200 and 'id="jupyter-config-data"' in page.text  # Notebook 7's page
        css = requests.get(server.url + "static/style.css", verify=server.verify, timeout=10)
        assert css.status_code == 200 and "font" in css.text
        assert server.stop(signal.SIGINT) == 0
        log = server.log()
    assert ("https://" if tls else "http://") + "127.0.0.1:" in log
    assert f"?token={TOKEN}" in log
    assert "Shutting down." in log


def test_https_server_refuses_plain_http(tmp_path):
    with start_nbflask(tmp_path, tls=True) as server:
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url.replace("https://", "http://") + "api", timeout=5)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_flask_run_serves_the_configured_deployment(tmp_path, tls):
    with start_flask(tmp_path, {"server": {"base_url": "/ipython/"}}, tls=tls) as server:
        assert server.url.endswith("/ipython/")
        assert server.get("api").status_code == 200
        assert server.get("api/status").status_code == 200
        outside_url = server.url.replace("/ipython/", "/api/status")
        outside = requests.get(outside_url, verify=server.verify, timeout=10)
        assert outside.status_code == 404


def test_flask_run_prints_the_generated_token(tmp_path):
    with start_flask(tmp_path, {"auth": {"token": "auto"}}) as server:
        token = server.log().split("log in with the token ")[1].split()[0]
        assert requests.get(server.url + "api/status?token=" + token, timeout=10).status_code == 200
        assert requests.get(server.url + "api/status?token=wrong", timeout=10).status_code == 403
