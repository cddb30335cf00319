"""`/files/<path>`: raw downloads, streamed, sandboxed so uploaded HTML or SVG cannot script us."""

from __future__ import annotations

import os

import pytest
from conftest import TOKEN


@pytest.fixture(params=["file", "memory"])
def client(request, make_app):
    app = make_app({"store": {"class": request.param}})
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    test_client.store = app.extensions["nbflask"].store
    return test_client


def test_raw_bytes_with_type_and_version_headers(client):
    data = bytes(range(256)) * 4096
    entry = client.store.write("blob.bin", data)
    response = client.get("/files/blob.bin")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.data == data
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["ETag"] == f'"{entry.etag}"'
    assert "Content-Disposition" not in response.headers


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("page.html", "text/html; charset=utf-8"),
        ("image.svg", "image/svg+xml; charset=utf-8"),
        ("n.ipynb", "application/x-ipynb+json"),
        ("notes.txt", "text/plain; charset=utf-8"),
    ],
)
def test_every_file_is_sandboxed(client, name, content_type):
    client.store.write(name, b"<svg onload='alert(document.cookie)'></svg>")
    response = client.get(f"/files/{name}")
    assert response.headers["Content-Type"] == content_type
    policy = response.headers["Content-Security-Policy"]
    directives = [directive.strip() for directive in policy.split(";")]
    assert "sandbox" in directives, "sandbox without allow-scripts/allow-same-origin"
    assert "default-src 'none'" in directives
    assert "script-src" not in policy and "allow-scripts" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_download_is_an_attachment(client):
    client.store.mkdir("sub")
    client.store.write("sub/résumé.ipynb", b"{}")
    response = client.get("/files/sub/r%C3%A9sum%C3%A9.ipynb?download=1")
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.ipynb" in disposition
    assert response.data == b"{}"
    client.store.write("中文.txt", b"x")
    assert "filename*=UTF-8''%E4%B8%AD%E6%96%87.txt" in client.get("/files/中文.txt?download=1").headers[
        "Content-Disposition"
    ]
    assert "Content-Disposition" not in client.get("/files/sub/r%C3%A9sum%C3%A9.ipynb?download=0").headers


def test_directories_and_missing_files_are_404(client):
    client.store.mkdir("d")
    for path in ("d", "missing.txt", "d/missing.txt"):
        response = client.get(f"/files/{path}")
        assert response.status_code == 404
        assert response.get_json()["message"]


def test_a_visible_symlink_into_a_hidden_folder_is_404(make_app, root_dir):
    client = make_app().test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    os.mkdir(os.path.join(root_dir, ".hidden"))
    with open(os.path.join(root_dir, ".hidden", "x.txt"), "w") as handle:
        handle.write("secret content")
    os.symlink(".hidden", os.path.join(root_dir, "link"))
    os.symlink(os.path.join(".hidden", "x.txt"), os.path.join(root_dir, "x-link.txt"))
    for path in ("link/x.txt", "x-link.txt", ".hidden/x.txt"):
        response = client.get(f"/files/{path}")
        assert response.status_code == 404, path
        assert response.get_json()["message"]
        assert b"secret content" not in response.data


def test_files_need_credentials(make_app):
    anonymous = make_app().test_client()
    response = anonymous.get("/files/anything.txt")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
