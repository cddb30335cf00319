"""The front-ends' ways, against a real `nbflask run`: a token link at the prefix logs the
browser in, the page then works by cookie (its websockets too, same origin only), logs out
from the menu's URL, and gets gzip and 304 over real HTTP; export through nbconvert."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import uuid

import pytest
import requests
import websocket
from live import TOKEN, start_nbflask

from nbflask import passwords
from nbflask.frontend import assets, extensions

PREFIX = "/ipython/"
PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("frontends")
    config = {"server": {"base_url": PREFIX}, "auth": {"password": passwords.hash_password(PASSWORD)}}
    with start_nbflask(tmp_path, config) as live:
        yield live


def browser_session(server) -> requests.Session:
    """Log in as a browser does: the token link, then nothing but cookies."""
    session = requests.Session()
    landing = session.get(server.url + f"?token={TOKEN}", timeout=30)
    assert landing.status_code == 200 and landing.url == server.url + "tree"
    return session


def cookie_header(session: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def ws_url(server, path: str) -> str:
    return server.url.replace("http", "ws", 1) + path


def test_token_link_at_the_prefix_then_cookies(server):
    session = browser_session(server)
    page = session.get(server.url + "lab", timeout=30)
    assert page.status_code == 200 and '"baseUrl": "/ipython/"' in page.text
    xsrf = session.cookies.get("_xsrf")
    created = session.post(server.url + "api/contents", json={"type": "notebook"},
                           headers={"X-XSRFToken": xsrf}, timeout=30)
    assert created.status_code == 201
    assert session.post(server.url + "api/contents", json={"type": "notebook"}, timeout=30).status_code == 403


def test_password_login_page_is_ours_and_leads_to_the_front_end(server):
    session = requests.Session()
    page = session.get(server.url + "lab", timeout=30)
    assert page.url.startswith(server.url + "login?next=") and 'href="/ipython/static/style.css"' in page.text
    form = {"password": PASSWORD, "next": PREFIX + "lab", "_xsrf": session.cookies.get("_xsrf")}
    done = session.post(server.url + "login", data=form, timeout=30)
    assert done.status_code == 200 and done.url == server.url + "lab"
    assert 'id="jupyter-config-data"' in done.text


def test_kernel_websocket_by_cookie_from_the_same_origin_only(server):
    session = browser_session(server)
    xsrf = {"X-XSRFToken": session.cookies.get("_xsrf")}
    started = session.post(server.url + "api/kernels", json={"name": "python3"}, headers=xsrf, timeout=60)
    kernel = started.json()
    path = f"api/kernels/{kernel['id']}/channels?session_id={uuid.uuid4().hex}"
    origin = server.url.split(PREFIX)[0]
    channel = websocket.create_connection(ws_url(server, path), cookie=cookie_header(session), origin=origin,
                                          timeout=60)
    try:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": "kernel_info_request", "session": "s", "username": "u",
                  "version": "5.3"}
        channel.send(json.dumps(
            {"channel": "shell", "header": header, "parent_header": {}, "metadata": {}, "content": {}}))
        while True:
            message = json.loads(channel.recv())
            if message["parent_header"].get("msg_id") == msg_id and message["channel"] == "shell":
                break
        assert message["content"]["status"] == "ok"
    finally:
        channel.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as foreign:
        websocket.create_connection(ws_url(server, path), cookie=cookie_header(session),
                                    origin="http://evil.example", timeout=30)
    assert foreign.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as anonymous:
        websocket.create_connection(ws_url(server, path), origin=origin, timeout=30)
    assert anonymous.value.status_code == 403
    session.delete(server.url + f"api/kernels/{kernel['id']}", headers=xsrf, timeout=30)


def test_the_event_stream_the_pages_open_is_accepted_and_quiet(server):
    session = browser_session(server)
    origin = server.url.split(PREFIX)[0]
    url = ws_url(server, "api/events/subscribe")
    events = websocket.create_connection(url, cookie=cookie_header(session), origin=origin, timeout=2)
    try:
        with pytest.raises(websocket.WebSocketTimeoutException):
            events.recv()
        assert events.connected
    finally:
        events.close()
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(url, origin=origin, timeout=30)
    lsp = session.get(server.url + "lsp/status", timeout=30)
    assert lsp.json() == {"version": 2, "sessions": {}, "specs": {}}


def test_logout_from_the_menu(server):
    """JupyterLab's File > Log Out (shown because quitButton is on) navigates to <base>logout."""
    session = browser_session(server)
    page = session.get(server.url + "lab", timeout=30).text
    found = re.search(r'id="jupyter-config-data" type="application/json">(.*?)</script>', page)
    config = json.loads(found.group(1))
    assert config["quitButton"] is True
    out = session.get(server.url + "logout", timeout=30)
    assert out.status_code == 200 and "logged out" in out.text.lower()
    again = session.get(server.url + "lab", allow_redirects=False, timeout=30)
    assert again.status_code == 302 and again.headers["Location"].startswith(PREFIX + "login")
    refused = server.session().post(server.url + "api/shutdown", timeout=30)
    assert refused.status_code == 403 and "nbflask stop" in refused.json()["message"]


def test_bundles_over_http_gzip_then_304(server):
    session = browser_session(server)
    page = session.get(server.url + "lab", timeout=30).text
    (script,) = re.findall(r'<script defer src="([^"]+)"', page)
    url = server.url.split(PREFIX)[0] + script
    raw = requests.get(url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=30)
    body = raw.raw.read()
    assert raw.headers["Content-Encoding"] == "gzip" and gzip.decompress(body)
    assert raw.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    conditional = {"Accept-Encoding": "gzip", "If-None-Match": raw.headers["ETag"]}
    again = requests.get(url, headers=conditional, timeout=30)
    assert again.status_code == 304 and again.content == b""
    page_again = session.get(server.url + "lab", headers={"If-None-Match": session.get(
        server.url + "lab", timeout=30).headers["ETag"]}, timeout=30)
    assert page_again.status_code == 304


def test_export_through_nbconvert(server):
    api = server.session()
    notebook = {"cells": [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": "# Title <b>x</b>"}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    api.put(server.url + "api/contents/report.ipynb", json={"type": "notebook", "content": notebook})
    assert "html" in api.get(server.url + "api/nbconvert").json()
    html = api.get(server.url + "nbconvert/html/report.ipynb?download=true")
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert html.headers["Content-Disposition"] == "attachment; filename=report.html"
    assert "sandbox" in html.headers["Content-Security-Policy"] and "Title" in html.text
    script = api.get(server.url + "nbconvert/markdown/report.ipynb")
    assert script.status_code == 200 and script.text.startswith("# Title")
    unknown = api.get(server.url + "nbconvert/nope/report.ipynb")
    assert unknown.status_code == 400 and "no exporter named 'nope'" in unknown.json()["message"]
    assert api.get(server.url + "nbconvert/html/missing.ipynb").status_code == 404


def shipped_packages(folder) -> list[dict]:
    return json.loads((folder / "third-party-licenses.json").read_text("utf-8"))["packages"]


def test_help_licenses_lists_and_downloads_the_shipped_third_party_licenses(server):
    """JupyterLab's Help > Licenses: its table reads the JSON report, its buttons download the
    CSV, Markdown and JSON ones from `licensesUrl` + '/' (as jupyterlab_server serves them)."""
    session = browser_session(server)
    page = session.get(server.url + "lab", timeout=30).text
    config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    url = server.url + config["licensesUrl"].lstrip("/") + "/"
    found = assets.load()
    report = session.get(url, timeout=30)
    assert report.status_code == 200 and report.headers["Content-Type"] == "application/json"
    bundles = report.json()["bundles"]
    assert bundles["@jupyterlab/application-top"]["packages"] == shipped_packages(found.lab.static_dir)
    assert bundles["@jupyter-notebook/app"]["packages"] == shipped_packages(found.notebook.static_dir)
    widgets = next(e for e in extensions.discover() if e.name == "@jupyter-widgets/jupyterlab-manager")
    assert bundles[widgets.name]["packages"] == shipped_packages(widgets.static_dir)
    for report_format, mimetype, suffix in (("csv", "text/csv", "csv"), ("markdown", "text/markdown", "md"),
                                            ("json", "application/json", "json")):
        download = session.get(url, params={"format": report_format, "download": 1}, timeout=30)
        assert download.status_code == 200 and download.headers["Content-Type"].startswith(mimetype)
        assert download.headers["Content-Disposition"] == f"attachment; filename=jupyterlab-licenses.{suffix}"
    lab_only = {"format": "csv", "bundles": "@jupyterlab/application"}
    rows = list(csv.DictReader(io.StringIO(session.get(url, params=lab_only, timeout=30).text)))
    assert {row["bundle"] for row in rows} == {"@jupyterlab/application-top"}
    assert len(rows) == len(bundles["@jupyterlab/application-top"]["packages"])
    short = session.get(url, params={"format": "markdown", "full_text": "false"}, timeout=30).text
    assert "# @jupyterlab/application-top" in short and "<pre/>" not in short


@pytest.mark.parametrize("query, problem", [
    ("format=xml", "format"), ("full_text=maybe", "full_text"), ("download=yes", "download"),
    ("bundles=(", "bundles"), ("bundles=(.*.*.*.*)*X", "bundles"), ("bundles=.*a.*b.*c", "bundles"),
])
def test_a_bad_licenses_query_is_a_400_saying_what_is_wrong(server, query, problem):
    """jupyterlab_server never answers these (its error path fails and the request hangs). A
    pattern that could backtrack for ever (it froze the server) is refused before it runs."""
    refused = browser_session(server).get(server.url + f"lab/api/licenses?{query}", timeout=30)
    assert refused.status_code == 400 and refused.json()["message"].startswith(problem + ":")
    assert refused.json()["reason"] == "Bad Request"
