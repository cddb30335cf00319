"""The example proxy set-up, for real: config/nginx.conf (TLS at nginx) in front of gunicorn
with config/behind-proxy.yaml's settings, under /ipython/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
import websocket
import yaml
from kernelws import KernelSocket
from live import TOKEN, make_cert, session_cookie_name, start_gunicorn
from proxy import NGINX, start_example_nginx
from tools import needs_package

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, needs_package(NGINX, "nginx-light")]


@pytest.fixture
def proxied(tmp_path):
    """gunicorn behind nginx; yields the public https URL and the certificate to trust."""
    settings = yaml.safe_load((REPO / "config" / "behind-proxy.yaml").read_text())
    settings["server"].pop("port")
    settings["store"]["root_dir"] = str(tmp_path / "notebooks")
    settings["auth"]["token"] = TOKEN
    backend = start_gunicorn(tmp_path, settings, workers=2)
    try:
        nginx = start_example_nginx(tmp_path / "nginx", backend.port, make_cert(tmp_path, "nginx.pem"))
        try:
            yield nginx.url, nginx.cert
        finally:
            nginx.stop()
    finally:
        backend.stop()


def test_api_contents_and_secure_cookies_through_nginx(proxied):
    url, cert = proxied
    api = requests.Session()
    api.trust_env = False
    api.verify = str(cert)
    api.headers["Authorization"] = f"token {TOKEN}"
    assert api.get(url + "api/status").status_code == 200
    created = api.post(url + "api/contents", json={"type": "notebook"})
    assert created.status_code == 201
    assert created.headers["Location"] == "/ipython/api/contents/Untitled.ipynb"
    browser = requests.Session()
    browser.trust_env = False
    browser.verify = str(cert)
    login = browser.get(url + f"tree?token={TOKEN}", allow_redirects=False)
    assert login.status_code == 302
    assert login.headers["Location"] == "/ipython/tree"
    name = session_cookie_name(url)
    cookie = next(c for c in login.raw.headers.getlist("Set-Cookie") if c.startswith(name + "="))
    # nginx said https in X-Forwarded-Proto, and nbflask trusts it: the cookie is Secure.
    assert "Secure" in cookie and "Path=/ipython/" in cookie
    assert browser.get(url + "tree/").status_code == 200


@pytest.mark.parametrize("v1", [True, False], ids=["v1", "legacy"])
def test_kernel_websocket_through_nginx(proxied, v1):
    url, cert = proxied
    api = requests.Session()
    api.trust_env = False
    api.verify = str(cert)
    api.headers["Authorization"] = f"token {TOKEN}"
    kernel = api.post(url + "api/kernels", json={"name": "python3"}).json()
    try:
        with KernelSocket(url, kernel["id"], TOKEN, v1=v1, cert=str(cert)) as channels:
            result = channels.execute("print('through nginx'); 6 * 7")
            assert result.stream("stdout") == "through nginx\n"
            assert result.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "42"
    finally:
        assert api.delete(url + f"api/kernels/{kernel['id']}").status_code == 204


def test_front_ends_through_nginx(proxied):
    """What a browser does at https://host/ipython/: token link, JupyterLab's page with the
    prefix in its config, its bundle (gzip, cached for a year), a settings save echoing
    `_xsrf`, and the kernel websocket by cookie from the page's own origin."""
    url, cert = proxied
    browser = requests.Session()
    browser.trust_env = False
    browser.verify = str(cert)
    assert browser.get(url + f"?token={TOKEN}").url == url + "tree"
    page = browser.get(url + "lab")
    assert page.status_code == 200 and '"baseUrl": "/ipython/"' in page.text
    assert '"fullStaticUrl": "/ipython/static/lab"' in page.text
    (script,) = re.findall(r'<script defer src="([^"]+)"', page.text)
    origin = url.split("/ipython/")[0]
    bundle = browser.get(origin + script, headers={"Accept-Encoding": "gzip"}, stream=True)
    assert bundle.status_code == 200 and bundle.headers["Content-Encoding"] == "gzip"
    assert bundle.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    xsrf = {"X-XSRFToken": browser.cookies.get("_xsrf")}
    theme = {"raw": '{"theme": "JupyterLab Dark"}'}
    assert browser.put(url + "lab/api/settings/@jupyterlab/apputils-extension:themes", json=theme,
                       headers=xsrf).status_code == 204
    kernel = browser.post(url + "api/kernels", json={"name": "python3"}, headers=xsrf).json()
    cookies = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    channels = url.replace("https", "wss", 1) + f"api/kernels/{kernel['id']}/channels"
    tls = {"ca_certs": str(cert)}
    channel = websocket.create_connection(channels, cookie=cookies, origin=origin, sslopt=tls, timeout=30)
    channel.close()
    assert browser.delete(url + f"api/kernels/{kernel['id']}", headers=xsrf).status_code == 204
