"""Hostile paths: nothing outside root_dir is ever read, written, moved or deleted.

Every API entry point gets `..`, encoded `..`, NUL bytes, backslashes, absolute paths and
symlinks that lead out of the root; each answer is a JSON 400 or 404, and the files beside
the root are byte-for-byte what they were.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

import pytest
from conftest import TOKEN

HOSTILE = [
    "../secret.txt",
    "%2e%2e/secret.txt",
    "..%2fsecret.txt",
    "sub/../../secret.txt",
    "sub/%2E%2E/%2E%2E/secret.txt",
    "secret%00.txt",
    "sub%00/x",
    "..%5csecret.txt",
    "sub%5c..%5c..%5csecret.txt",
    "leak.txt",
    "leakdir/x.txt",
    "leakdir/new.txt",
    "leakdir",
]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            found[os.path.join(dirpath, name)] = None
        for name in filenames:
            found[os.path.join(dirpath, name)] = Path(dirpath, name).read_bytes()
    return found


@pytest.fixture
def setup(make_app, root_dir):
    root = Path(root_dir)
    outside = root.parent
    (outside / "secret.txt").write_text("top secret")
    (outside / "outdir").mkdir()
    (outside / "outdir" / "x.txt").write_text("outside content")
    (root / "sub").mkdir()
    (root / "ok.txt").write_text("inside")
    os.symlink(outside / "secret.txt", root / "leak.txt")
    os.symlink(outside / "outdir", root / "leakdir")
    client = make_app().test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    return client, outside


def refused(response) -> None:
    assert response.status_code in (400, 404), (response.status_code, response.get_data(as_text=True))
    assert set(response.get_json()) == {"message", "reason"}
    assert b"top secret" not in response.data and b"outside content" not in response.data


@pytest.mark.parametrize("path", HOSTILE)
def test_every_entry_point_refuses_the_path(setup, path):
    client, outside = setup
    before = snapshot(outside)
    text = {"type": "file", "format": "text", "content": "pwned"}
    refused(client.get(f"/api/contents/{path}"))
    refused(client.get(f"/api/contents/{path}?type=file&format=base64"))
    refused(client.get(f"/files/{path}"))
    refused(client.put(f"/api/contents/{path}", json=text))
    refused(client.put(f"/api/contents/{path}", json={"type": "directory"}))
    refused(client.delete(f"/api/contents/{path}"))
    refused(client.patch(f"/api/contents/{path}", json={"path": "moved.txt"}))
    refused(client.patch("/api/contents/ok.txt", json={"path": unquote(path)}))
    refused(client.post(f"/api/contents/{path}", json={"type": "notebook"}))
    refused(client.post("/api/contents", json={"copy_from": unquote(path)}))
    listed = client.get(f"/api/contents/{path}/checkpoints")
    if listed.status_code == 200:  # no file here (a link out is none): no checkpoints, as Jupyter answers
        assert listed.get_json() == []
    else:
        refused(listed)
    refused(client.post(f"/api/contents/{path}/checkpoints"))
    refused(client.post(f"/api/contents/{path}/trust"))
    assert snapshot(outside) == before
    assert (Path(outside) / "notebooks" / "ok.txt").read_text() == "inside"


def test_absolute_paths_stay_inside_the_root(setup):
    client, outside = setup
    for path in ("//etc/passwd", "/%2Fetc/passwd"):
        response = client.get(f"/api/contents/{path}", follow_redirects=True)
        assert response.status_code in (400, 404)
        assert b"root:" not in response.data


def test_listing_hides_links_that_leave_the_root(setup):
    client, _ = setup
    names = {child["name"] for child in client.get("/api/contents").get_json()["content"]}
    assert names == {"sub", "ok.txt"}
