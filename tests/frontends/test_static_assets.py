"""The front-ends' files: types, caching (immutable hashed names, 304 for the rest), gzip,
federated extensions and themes, and nothing outside the asset folders."""

from __future__ import annotations

import gzip
import json

import pytest

from nbflask.frontend import assets, extensions
from nbflask.frontend.staticfiles import find

LAB = assets.load().lab
NOTEBOOK = assets.load().notebook
MAIN = "/static/lab/" + LAB.scripts[0].split("?")[0]
YEAR = "public, max-age=31536000, immutable"


def a_file(folder, suffix: str) -> str:
    return next(p.name for p in sorted(folder.iterdir()) if p.name.endswith(suffix))


def test_hashed_bundles_are_immutable_javascript(anonymous):
    response = anonymous.get(MAIN)
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == YEAR
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data == (LAB.static_dir / MAIN.rsplit("/", 1)[1]).read_bytes()


def test_gzip_when_offered_with_its_own_etag_and_304(anonymous):
    plain = anonymous.get(MAIN)
    packed = anonymous.get(MAIN, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"] and "Accept-Encoding" in plain.headers["Vary"]
    assert gzip.decompress(packed.data) == plain.data
    assert len(packed.data) < len(plain.data) / 2
    assert packed.headers["ETag"] != plain.headers["ETag"]
    again = anonymous.get(MAIN, headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["Cache-Control"] == YEAR
    assert anonymous.get(MAIN, headers={"If-None-Match": plain.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize(
    ("folder", "suffix", "mimetype"),
    [(LAB.static_dir, ".woff2", "font/woff2"), (LAB.static_dir, ".woff", "font/woff"),
     (LAB.static_dir, ".svg", "image/svg+xml"), (NOTEBOOK.static_dir, ".ttf", "font/ttf")],
)
def test_fonts_and_images_have_their_types_and_fonts_are_not_recompressed(
    anonymous, folder, suffix, mimetype
):
    name = a_file(folder, suffix)
    url = ("/static/lab/" if folder == LAB.static_dir else "/static/notebook/") + name
    response = anonymous.get(url, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200 and response.mimetype == mimetype
    if suffix.startswith(".woff"):
        assert "Content-Encoding" not in response.headers


def test_names_without_a_hash_are_revalidated(anonymous):
    response = anonymous.get("/static/lab/package.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "public, no-cache"
    again = anonymous.get("/static/lab/package.json", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_themes_are_css_served_from_the_lab_app_folder(anonymous):
    url = "/lab/api/themes/@jupyterlab/theme-dark-extension/index.css"
    response = anonymous.get(url, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/css; charset=utf-8"
    assert response.headers["Content-Encoding"] == "gzip"
    assert anonymous.get("/lab/api/themes/@jupyterlab/no-such-theme/index.css").status_code == 404


def test_federated_extension_files_are_served_from_static_only(anonymous):
    widgets = next(e for e in extensions.discover() if e.name == "@jupyter-widgets/jupyterlab-manager")
    entry = widgets.build["load"]
    response = anonymous.get(f"/lab/extensions/{widgets.name}/{entry}")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == YEAR
    assert anonymous.get(f"/lab/extensions/{widgets.name}/package.json").status_code == 404
    assert anonymous.get("/lab/extensions/@nobody/nothing/static/x.js").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/static/lab/../templates/tree.html",
        "/static/lab/%2e%2e/index.html",
        "/static/notebook/..%2F..%2Fsetup.py",
        "/static/lab/nope.js",
        "/lab/extensions/@jupyter-widgets/jupyterlab-manager/static/../package.json",
    ],
)
def test_nothing_outside_the_asset_folders(anonymous, url):
    assert anonymous.get(url).status_code == 404


def test_find_refuses_escapes(tmp_path):
    (tmp_path / "inside.js").write_text("x")
    assert find(tmp_path, "inside.js") is not None
    for name in ("../inside.js", "a/../../x", "", "/etc/passwd", "a\\b", "x\0y"):
        assert find(tmp_path, name) is None


def test_head_answers_without_a_body(anonymous):
    response = anonymous.head(MAIN)
    assert response.status_code == 200 and response.data == b""
    assert int(response.headers["Content-Length"]) == (LAB.static_dir / MAIN.rsplit("/", 1)[1]).stat().st_size


def test_the_favicons_the_pages_swap_are_ours(anonymous):
    """Notebook 7 sets `static/favicons/favicon-busy-1.ico` while a kernel runs, then
    `favicon-notebook.ico` (Jupyter Server ships those; nbflask answers with its own icons)."""
    idle = anonymous.get("/static/favicons/favicon-notebook.ico")
    busy = anonymous.get("/static/favicons/favicon-busy-1.ico")
    assert idle.status_code == busy.status_code == 200
    assert idle.mimetype == busy.mimetype == "image/svg+xml" and idle.data != busy.data
    assert anonymous.get("/static/favicons/favicon.ico").data == idle.data
    assert anonymous.get("/static/favicons/other.ico").status_code == 404


def test_links_in_an_extensions_static_folder_out_of_it_or_onto_hidden_files_are_404(make_app, tmp_path,
                                                                                   monkeypatch):
    """An installed extension's files are public: a link in them to a user's file (a notebook,
    ~/.ssh) must not publish it, as kernelspec resources refuse it."""
    installed = tmp_path / "data" / "labextensions"
    package = installed / "linked-extension"
    static = package / "static"
    static.mkdir(parents=True)
    build = {"load": "static/entry.js"}
    (package / "package.json").write_text(json.dumps(
        {"name": "linked-extension", "version": "1.0.0", "jupyterlab": {"_build": build}}))
    (static / "entry.js").write_text("console.log('entry')")
    (static / ".hidden.js").write_text("HIDDEN-CONTENT")
    secret = tmp_path / "home" / "private.ipynb"
    secret.parent.mkdir()
    secret.write_text("SECRET-CONTENT")
    (static / "private.js").symlink_to(secret)
    (static / "alias.js").symlink_to(static / ".hidden.js")
    (static / "up").symlink_to(secret.parent)
    (static / "same.js").symlink_to(static / "entry.js")  # a link inside the folder is its file
    linked_root = tmp_path / "develop" / "labextensions"  # `jupyter labextension develop` links the folder
    linked_root.mkdir(parents=True)
    (linked_root / "linked-extension").symlink_to(package)
    for data_path in (installed, linked_root):
        monkeypatch.setenv("JUPYTER_PATH", str(data_path.parent))
        anonymous = make_app().test_client()
        url = "/lab/extensions/linked-extension/static/"
        assert anonymous.get(url + "entry.js").data == b"console.log('entry')"
        assert anonymous.get(url + "same.js").data == b"console.log('entry')"
        for name in ("private.js", "up/private.ipynb", "alias.js", ".hidden.js"):
            response = anonymous.get(url + name)
            assert response.status_code == 404, name
            assert b"SECRET" not in response.data and b"HIDDEN" not in response.data, name
