"""The whole server under /ipython/, three ways, each end to end through real servers:

a. `server.base_url: /ipython/` (the seed's way), gunicorn serving TLS itself;
b. gunicorn mounting the app at `SCRIPT_NAME=/ipython` (its application root), base_url `/`;
c. nginx stripping /ipython/ and saying so in X-Forwarded-Prefix, with `trust_xheaders` on.

Each is checked the way a browser meets it: redirects, the token login and its cookies'
paths and flags, a front-end page and its static files, the API's Location headers, and a
kernel websocket opened by cookie from the page's origin; then `nbflask doctor` has its look.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from kernelws import KernelSocket
from live import TOKEN, free_port, make_cert, run_doctor, session_cookie_name, start_gunicorn
from proxy import NGINX, Nginx, example_site
from tools import needs_package

import nbflask

PREFIX = "/ipython/"


def browser_session(cert: Path) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(cert)
    return session


def set_cookies(response: requests.Response) -> dict[str, str]:
    """Each Set-Cookie header by cookie name, as the server wrote it."""
    return {line.split("=", 1)[0]: line for line in response.raw.headers.getlist("Set-Cookie")}


def assert_works_under_prefix(url: str, cert: Path) -> None:
    """Everything a browser and an API client use, at `url` (https://host:port/ipython/)."""
    assert urlsplit(url).path == PREFIX
    origin = url[: -len(PREFIX)]
    browser = browser_session(cert)

    # Redirects: to the login page (and back), and away from a trailing slash.
    to_login = browser.get(url + "tree", allow_redirects=False)
    assert to_login.status_code == 302
    location = urlsplit(to_login.headers["Location"])
    assert location.path == PREFIX + "login"
    assert parse_qs(location.query)["next"] == [PREFIX + "tree"]
    login_page = browser.get(origin + to_login.headers["Location"])
    assert login_page.status_code == 200
    (xsrf_cookie,) = [c for c in browser.cookies if c.name == "_xsrf"]
    assert (xsrf_cookie.path, xsrf_cookie.secure) == (PREFIX, True)
    slash = browser.get(url + "tree/", allow_redirects=False)
    assert (slash.status_code, slash.headers["Location"]) == (302, PREFIX + "tree")

    # The token login: back to the page asked for, with cookies scoped to the prefix.
    login = browser.get(url + f"tree?token={TOKEN}", allow_redirects=False)
    assert (login.status_code, login.headers["Location"]) == (302, PREFIX + "tree")
    session_cookie = set_cookies(login)[session_cookie_name(url)]
    assert "Path=/ipython/" in session_cookie
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie
    home = browser.get(url, allow_redirects=False)
    assert (home.status_code, home.headers["Location"]) == (302, PREFIX + "tree")

    # A page: its config says the prefix, and its static files load from under it.
    page = browser.get(url + "lab")
    assert page.status_code == 200 and '"baseUrl": "/ipython/"' in page.text
    assert '"fullStaticUrl": "/ipython/static/lab"' in page.text
    (script,) = re.findall(r'<script defer src="([^"]+)"', page.text)
    assert script.startswith(PREFIX)
    assert browser.get(origin + script).status_code == 200
    assert browser.get(url + "static/style.css").status_code == 200
    xsrf = {"X-XSRFToken": browser.cookies.get("_xsrf", path=PREFIX)}

    # The API: Location headers carry the prefix.
    created = browser.post(url + "api/contents", json={"type": "notebook"}, headers=xsrf)
    assert created.status_code == 201
    assert created.headers["Location"] == PREFIX + "api/contents/Untitled.ipynb"
    kernel = browser.post(url + "api/kernels", json={"name": "python3"}, headers=xsrf)
    assert kernel.status_code == 201
    kernel_id = kernel.json()["id"]
    assert kernel.headers["Location"] == PREFIX + f"api/kernels/{kernel_id}"

    # The kernel's websocket, by cookie from the page's origin, as the page opens it.
    cookies = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    try:
        with KernelSocket(url, kernel_id, None, cert=str(cert), cookie=cookies, origin=origin) as channels:
            result = channels.execute("print('under the prefix'); 6 * 7")
            assert result.stream("stdout") == "under the prefix\n"
            assert result.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "42"
    finally:
        assert browser.delete(url + f"api/kernels/{kernel_id}", headers=xsrf).status_code == 204

    # And `nbflask doctor` finds nothing to fix.
    status, lines = run_doctor(url, "--token", TOKEN, "--cafile", str(cert))
    assert status == 0 and all(line.startswith("PASS") for line in lines.values()), lines


def stripping_site(port: int, upstream: int, cert: Path) -> str:
    """config/nginx.conf changed to strip /ipython/ and name it in X-Forwarded-Prefix."""
    text = example_site(port, upstream, cert)
    old = "proxy_pass http://nbflask;"
    assert old in text
    return text.replace(
        old, "proxy_pass http://nbflask/;\n        proxy_set_header X-Forwarded-Prefix /ipython;"
    )


@pytest.mark.slow
def test_base_url(tmp_path):
    config = {"server": {"base_url": PREFIX}}
    with start_gunicorn(tmp_path, config, tls=True, workers=2) as server:
        assert server.url.endswith(PREFIX)
        assert_works_under_prefix(server.url, server.cert)
        outside = browser_session(server.cert).get(server.url[: -len(PREFIX)] + "/", allow_redirects=False)
        assert (outside.status_code, outside.headers["Location"]) == (302, PREFIX)


@pytest.mark.slow
def test_mounted_by_gunicorn_at_script_name(tmp_path):
    with start_gunicorn(tmp_path, tls=True, workers=2, mount="/ipython") as server:
        assert server.url.endswith(PREFIX)
        assert_works_under_prefix(server.url, server.cert)


@pytest.mark.slow
@needs_package(NGINX, "nginx-light")
def test_behind_a_proxy_that_strips_the_prefix(tmp_path):
    config = {"server": {"trust_xheaders": True}, "auth": {"allow_remote_access": True}}
    with start_gunicorn(tmp_path, config, workers=2) as backend:
        cert = make_cert(tmp_path, "nginx.pem")
        port = free_port()
        nginx = Nginx(tmp_path / "nginx", stripping_site(port, backend.port, cert),
                      f"https://127.0.0.1:{port}{PREFIX}", cert)
        try:
            assert_works_under_prefix(nginx.url, cert)
        finally:
            nginx.stop()


@pytest.mark.slow
def test_gunicorn_leaves_forwarded_headers_to_trust_xheaders(tmp_path):
    """gunicorn by itself believes X-Forwarded-Proto and a SCRIPT_NAME header from loopback;
    config/gunicorn.conf.py turns that off, so `trust_xheaders: false` means what it says."""
    with start_gunicorn(tmp_path, workers=1) as server:
        headers = {**FORWARDED, "SCRIPT_NAME": "/elsewhere"}
        login = requests.get(server.url + f"tree?token={TOKEN}", headers=headers, allow_redirects=False,
                             timeout=30)
    assert login.headers["Location"] == "/tree"
    cookie = set_cookies(login)[session_cookie_name(server.url)]
    assert "Path=/;" in cookie and "Secure" not in cookie


FORWARDED = {"X-Forwarded-Prefix": "/outer", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "nb.example"}


def login_redirect(config: dict, path: str) -> requests.Response:
    client = nbflask.create_app(config).test_client()
    return client.get(path + f"tree?token={TOKEN}", headers=FORWARDED)


def test_forwarded_headers_are_ignored_unless_trusted(tmp_path):
    config = {"auth": {"token": TOKEN}, "store": {"root_dir": str(tmp_path)}}
    response = login_redirect(config, "/")
    assert response.headers["Location"] == "/tree"
    cookie = response.headers["Set-Cookie"]
    assert "Path=/;" in cookie and "Secure" not in cookie


def test_a_forwarded_prefix_goes_before_base_url(tmp_path):
    config = {"server": {"trust_xheaders": True, "base_url": PREFIX},
              "auth": {"token": TOKEN, "allow_remote_access": True}, "store": {"root_dir": str(tmp_path)}}
    response = login_redirect(config, PREFIX)
    assert response.headers["Location"] == "/outer/ipython/tree"
    cookie = response.headers["Set-Cookie"]
    assert "Path=/outer/ipython/" in cookie and "Secure" in cookie
    outside = nbflask.create_app(config).test_client().get("/", headers=FORWARDED)
    assert outside.headers["Location"] == "/outer/ipython/"
