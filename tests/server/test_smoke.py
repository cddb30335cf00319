"""Smoke checks of every part, run with and without a URL prefix (the seed's /ipython/)."""

from __future__ import annotations

import pytest
import requests
from conftest import TOKEN
from kernelws import KernelSocket
from live import session_cookie_name, start_nbflask

PREFIXES = ["/", "/ipython/"]


@pytest.fixture(params=PREFIXES, ids=["root", "prefix"])
def prefix(request) -> str:
    return request.param


@pytest.fixture
def site(make_app, prefix):
    app = make_app({"server": {"base_url": prefix}})
    client = app.test_client()
    return client, prefix


def test_api_and_status_live_under_the_prefix(site):
    client, prefix = site
    assert client.get(prefix + "api").status_code == 200
    assert client.get(prefix + "api/status", headers={"Authorization": f"token {TOKEN}"}).status_code == 200
    if prefix != "/":
        assert client.get("/api").status_code == 404
        assert client.get("/").headers["Location"] == prefix


def test_login_flow_and_cookie_stay_under_the_prefix(site):
    client, prefix = site
    response = client.get(prefix + "tree")
    assert response.status_code == 302
    assert response.headers["Location"].startswith(prefix + "login?next=")
    response = client.get(prefix + f"tree?token={TOKEN}")
    assert response.headers["Location"] == prefix + "tree"
    name = session_cookie_name(f"http://localhost{prefix}tree")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(name + "="))
    assert f"Path={prefix}" in cookie and "HttpOnly" in cookie
    page = client.get(prefix + "tree")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'src="{prefix}static/notebook/main.' in html and f'"baseUrl": "{prefix}"' in html
    assert client.get(prefix + "static/style.css").status_code == 200


def test_contents_and_files_under_the_prefix(site):
    client, prefix = site
    auth = {"Authorization": f"token {TOKEN}"}
    created = client.post(prefix + "api/contents", json={"type": "notebook"}, headers=auth)
    assert created.status_code == 201
    assert created.headers["Location"] == prefix + "api/contents/Untitled.ipynb"
    text = {"type": "file", "format": "text", "content": "hello"}
    assert client.put(prefix + "api/contents/a.txt", json=text, headers=auth).status_code == 201
    assert client.get(prefix + "files/a.txt", headers=auth).data == b"hello"


@pytest.mark.slow
def test_live_server_under_the_prefix(tmp_path, prefix):
    with start_nbflask(tmp_path, {"server": {"base_url": prefix}}) as server:
        assert server.url.endswith(prefix)
        assert server.get("api/status").status_code == 200
        page = requests.get(server.url + f"tree?token={TOKEN}", timeout=10)
        assert page.status_code == 200
        assert page.url == server.url + "tree"
        api = server.session()
        assert api.post(server.url + "api/contents", json={"type": "notebook"}).status_code == 201
        listing = api.get(server.url + "api/contents").json()
        assert [entry["name"] for entry in listing["content"]] == ["Untitled.ipynb"]
        session = api.post(server.url + "api/sessions", json={
            "path": "Untitled.ipynb", "type": "notebook", "kernel": {"name": "python3"}}).json()
        kernel_id = session["kernel"]["id"]
        with KernelSocket(server.url, kernel_id, TOKEN, v1=True) as channels:
            assert channels.execute("import os; print(os.getcwd())").stream("stdout").strip() == str(
                tmp_path / "notebooks"
            )
        assert api.delete(server.url + f"api/sessions/{session['id']}").status_code == 204
