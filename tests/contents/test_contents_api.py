"""`/api/contents` as Jupyter clients use it, on the file, memory and Swift stores.

Each test is a client's story: what it sends, the status, the model keys and headers it
gets back, and what the store holds afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import stat

import nbformat
import pytest
from conftest import TOKEN

from nbflask.config import ConfigError

MODEL_KEYS = {
    "name", "path", "type", "writable", "created", "last_modified", "mimetype",
    "content", "format", "size", "hash", "hash_algorithm",
}


def notebook(*sources: str, outputs: list | None = None) -> dict:
    nb = nbformat.v4.new_notebook()
    for source in sources:
        cell = nbformat.v4.new_code_cell(source)
        if outputs is not None:
            cell.outputs = nbformat.from_dict(outputs)
        nb.cells.append(cell)
    return json.loads(nbformat.writes(nb))


@pytest.fixture(params=["file", "memory", "swift"])
def api(request, make_app):
    """A token-authenticated client on a fresh app with the given store (Swift: a real one)."""
    store = {"class": request.param}
    if request.param == "swift":
        store.update(request.getfixturevalue("swift_options"))
    app = make_app({"store": store})
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    client.store = app.extensions["nbflask"].store
    return client


def v3_notebook(source: str) -> str:
    cell = nbformat.v3.new_code_cell(input=source)
    worksheet = nbformat.v3.new_worksheet(cells=[cell])
    return nbformat.writes(nbformat.v3.new_notebook(worksheets=[worksheet]), version=3)


def put(api, path, **model):
    return api.put(f"/api/contents/{path}", json=model)


def put_notebook(api, path, nb=None):
    return put(api, path, type="notebook", format="json", content=nb or notebook("print(1)"))


def put_text(api, path, text):
    return put(api, path, type="file", format="text", content=text)


def assert_error(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"message", "reason"}
    assert body["message"]
    return body


# -- GET -------------------------------------------------------------------------------
def test_root_directory_model(api):
    put_notebook(api, "a.ipynb")
    put_text(api, "b.txt", "hello")
    api.put("/api/contents/sub", json={"type": "directory"})
    response = api.get("/api/contents")
    assert response.status_code == 200
    model = response.get_json()
    assert set(model) == MODEL_KEYS
    assert (model["type"], model["format"], model["path"], model["name"]) == ("directory", "json", "", "")
    children = {child["name"]: child for child in model["content"]}
    assert set(children) == {"a.ipynb", "b.txt", "sub"}
    assert children["a.ipynb"]["type"] == "notebook"
    assert children["b.txt"]["type"] == "file"
    assert children["b.txt"]["mimetype"] == "text/plain"
    assert children["sub"]["type"] == "directory"
    for child in children.values():
        assert set(child) == MODEL_KEYS
        assert child["content"] is None and child["format"] is None
    assert api.get("/api/contents/").get_json()["content"] == model["content"]


def test_notebook_model_headers_and_content(api):
    put_notebook(api, "n.ipynb", notebook("x = 1"))
    response = api.get("/api/contents/n.ipynb")
    assert response.status_code == 200
    model = response.get_json()
    assert set(model) == MODEL_KEYS
    assert (model["type"], model["format"], model["mimetype"]) == ("notebook", "json", None)
    assert model["content"]["nbformat"] == 4
    assert model["content"]["cells"][0]["source"] == "x = 1"
    assert model["size"] == len(api.store.read("n.ipynb"))
    assert model["writable"] is True
    assert model["last_modified"].endswith("Z") and model["created"].endswith("Z")
    assert response.headers["ETag"].startswith('"') and response.headers["ETag"].endswith('"')
    assert response.headers["Last-Modified"].endswith("GMT")


def test_content_zero_and_hash(api):
    put_notebook(api, "n.ipynb")
    model = api.get("/api/contents/n.ipynb?content=0").get_json()
    assert model["content"] is None and model["format"] is None and model["hash"] is None
    hashed = api.get("/api/contents/n.ipynb?content=0&hash=1").get_json()
    assert hashed["hash"] == hashlib.sha256(api.store.read("n.ipynb")).hexdigest()
    assert hashed["hash_algorithm"] == "sha256"
    assert hashed["content"] is None


def test_text_and_binary_files(api):
    put_text(api, "t.txt", "héllo")
    text = api.get("/api/contents/t.txt").get_json()
    assert (text["type"], text["format"], text["content"]) == ("file", "text", "héllo")
    assert text["mimetype"] == "text/plain"
    raw = bytes(range(256))
    put(api, "b.bin", type="file", format="base64", content=base64.b64encode(raw).decode())
    binary = api.get("/api/contents/b.bin").get_json()
    assert binary["format"] == "base64"
    assert binary["mimetype"] == "application/octet-stream"
    assert base64.b64decode(binary["content"]) == raw
    as_base64 = api.get("/api/contents/t.txt?format=base64").get_json()
    assert base64.b64decode(as_base64["content"]) == "héllo".encode()


def test_non_utf8_text_is_served_as_base64(api):
    latin1 = "café".encode("latin-1")
    api.store.write("latin.txt", latin1)
    model = api.get("/api/contents/latin.txt").get_json()
    assert model["format"] == "base64"
    assert base64.b64decode(model["content"]) == latin1
    body = assert_error(api.get("/api/contents/latin.txt?format=text"), 400)
    assert body["reason"] == "bad format"


def test_type_parameter(api):
    put_notebook(api, "n.ipynb")
    api.put("/api/contents/d", json={"type": "directory"})
    as_file = api.get("/api/contents/n.ipynb?type=file").get_json()
    assert as_file["type"] == "file" and as_file["format"] == "text"
    assert json.loads(as_file["content"])["nbformat"] == 4
    # Jupyter Server 2.x's exact answers
    for query, message in [
        ("n.ipynb?type=directory", "n.ipynb is not a directory"),
        ("d?type=file", "d is a directory, not a file"),
        ("d?type=notebook", "d is a directory, not a notebook"),
    ]:
        body = assert_error(api.get(f"/api/contents/{query}"), 400)
        assert body == {"message": message, "reason": "bad type"}


@pytest.mark.parametrize("query", ["format=json", "format=xml", "content=2", "content=yes", "hash=2"])
def test_bad_query_arguments(api, query):
    put_notebook(api, "n.ipynb")
    assert_error(api.get(f"/api/contents/n.ipynb?{query}"), 400)


def test_missing_is_404_json(api):
    body = assert_error(api.get("/api/contents/nope.ipynb"), 404)
    assert "nope.ipynb" in body["message"]


def test_old_notebooks_are_upgraded_to_v4_on_read(api):
    api.store.write("old.ipynb", v3_notebook("1+1").encode())
    model = api.get("/api/contents/old.ipynb").get_json()
    assert model["content"]["nbformat"] == 4
    assert model["content"]["cells"][0]["source"] == "1+1"
    assert "message" not in model


def test_unreadable_notebook_on_disk_is_400(api):
    api.store.write("broken.ipynb", b"{not json")
    assert "Unreadable Notebook" in assert_error(api.get("/api/contents/broken.ipynb"), 400)["message"]
    assert api.get("/api/contents/broken.ipynb?type=file").get_json()["content"] == "{not json"


def test_invalid_notebook_on_disk_is_served_with_the_validation_message(api):
    nb = notebook("x")
    nb["cells"][0]["bogus"] = 1
    api.store.write("odd.ipynb", json.dumps(nb).encode())
    model = api.get("/api/contents/odd.ipynb").get_json()
    assert model["content"]["cells"][0]["source"] == "x"
    assert model["message"].startswith("Notebook validation failed")


def test_api_needs_credentials(make_app):
    anonymous = make_app().test_client()
    assert_error(anonymous.get("/api/contents"), 403)
    assert_error(put_text(anonymous, "x.txt", ""), 403)


# -- PUT -------------------------------------------------------------------------------
def test_put_creates_with_201_then_saves_with_200(api):
    created = put_notebook(api, "n.ipynb")
    assert created.status_code == 201
    assert created.headers["Location"] == "/api/contents/n.ipynb"
    model = created.get_json()
    assert set(model) == MODEL_KEYS
    assert model["type"] == "notebook" and model["content"] is None
    saved = put_notebook(api, "n.ipynb", notebook("print(2)"))
    assert saved.status_code == 200
    assert saved.headers["ETag"] != created.headers["ETag"]
    on_disk = nbformat.reads(api.store.read("n.ipynb").decode(), as_version=4)
    assert on_disk.cells[0].source == "print(2)"


def test_saved_notebooks_are_written_as_jupyter_writes_them(api):
    nb = notebook("a = 1\nb = 2")
    put_notebook(api, "n.ipynb", nb)
    stored = api.store.read("n.ipynb").decode()
    assert stored == nbformat.writes(nbformat.from_dict(nb)) + "\n"
    assert '"source": [\n    "a = 1\\n",\n    "b = 2"\n   ]' in stored


def test_put_text_base64_and_directory(api):
    assert put_text(api, "t.txt", "text").status_code == 201
    assert api.store.read("t.txt") == b"text"
    raw = b"\x00\xff\x10"
    uploaded = put(api, "b.bin", type="file", format="base64", content=base64.b64encode(raw).decode())
    assert uploaded.status_code == 201
    assert api.store.read("b.bin") == raw
    made = api.put("/api/contents/newdir", json={"type": "directory"})
    assert made.status_code == 201 and made.get_json()["type"] == "directory"
    again = api.put("/api/contents/newdir", json={"type": "directory"})
    assert again.status_code == 200
    assert_error(api.put("/api/contents/t.txt", json={"type": "directory"}), 400)


@pytest.mark.parametrize(
    "model",
    [
        {"type": "file", "content": "x"},
        {"type": "file", "format": "json", "content": "x"},
        {"type": "file", "format": "base64", "content": "***not base64***"},
        {"type": "file", "format": "text", "content": 42},
        {"type": "notebook", "format": "json", "content": [1, 2]},
        {"type": "notebook", "format": "json", "content": {"cells": []}},
        {"type": "notebook", "format": "json", "content": {"nbformat": 9, "cells": []}},
        {"type": "notebook", "format": "json", "content": {"nbformat": 4, "cells": "nope"}},
        {"type": "notebook", "format": "json", "content": "text"},
        {"type": "file", "format": "text", "content": "x", "copy_from": "a.txt"},
    ],
)
def test_bad_saves_are_400_and_change_nothing(api, model):
    put_text(api, "t.txt", "original")
    put_notebook(api, "n.ipynb", notebook("original"))
    before = {path: api.store.read(path) for path in ("t.txt", "n.ipynb")}
    target = "n.ipynb" if model["type"] == "notebook" else "t.txt"
    assert_error(api.put(f"/api/contents/{target}", json=model), 400)
    assert {path: api.store.read(path) for path in before} == before


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'"string"',
        b'{"type": "file", "format": "text", "content": "lone \\ud800 surrogate"}',
        b'{"type": "notebook", "content": {"nbformat": 4, "nbformat_minor": 5, "metadata": {},'
        b' "cells": [{"cell_type": "raw", "id": "r", "metadata": {}, "source": "\\udcff"}]}}',
    ],
)
def test_malformed_json_body_is_400_and_changes_nothing(api, body):
    put_notebook(api, "n.ipynb")
    put_text(api, "n.txt", "text")
    before = {path: api.store.read(path) for path in ("n.ipynb", "n.txt")}
    for path in before:
        assert_error(api.put(f"/api/contents/{path}", data=body, content_type="application/json"), 400)
    assert {path: api.store.read(path) for path in before} == before


def test_schema_invalid_notebook_is_saved_with_the_message(api):
    nb = notebook("keep me")
    nb["cells"][0]["unexpected"] = True
    response = put_notebook(api, "n.ipynb", nb)
    assert response.status_code == 201
    assert response.get_json()["message"].startswith("Notebook validation failed")
    assert json.loads(api.store.read("n.ipynb"))["cells"][0]["source"] == ["keep me"]


def test_notebook_nbformat_cannot_write_is_still_kept(api):
    cell_without_metadata = {"cell_type": "code", "id": "c1", "source": "keep"}
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell_without_metadata]}
    response = put_notebook(api, "n.ipynb", nb)
    assert response.status_code == 201
    assert "message" in response.get_json()
    assert json.loads(api.store.read("n.ipynb"))["cells"][0]["source"] in ("keep", ["keep"])


def test_old_notebook_saved_is_upgraded(api):
    response = put_notebook(api, "old.ipynb", json.loads(v3_notebook("x")))
    assert response.status_code == 201
    assert json.loads(api.store.read("old.ipynb"))["nbformat"] == 4


def test_put_into_a_missing_folder_is_404(api):
    assert_error(put_text(api, "missing/t.txt", "x"), 404)


def test_put_without_body_creates_an_untitled_file(api):
    api.put("/api/contents/d", json={"type": "directory"})
    response = api.put("/api/contents/d")
    assert response.status_code == 201
    assert response.get_json()["path"] == "d/untitled"


def put_chunk(api, path, number, data):
    return put(api, path, type="file", format="base64", chunk=number, content=base64.b64encode(data).decode())


def test_chunked_upload(api):
    parts = [b"a" * 10, b"b" * 10, b"c" * 5]
    statuses = [put_chunk(api, "big.bin", number, part).status_code
                for number, part in zip((1, 2, -1), parts, strict=True)]
    assert statuses == [201, 200, 201]
    assert api.store.read("big.bin") == b"".join(parts)
    model = api.get("/api/contents/big.bin?content=0").get_json()
    assert (model["type"], model["size"]) == ("file", 25)


def test_a_chunked_upload_replaces_the_file_only_at_its_last_chunk(api):
    put_text(api, "data.csv", "old")
    first = put_chunk(api, "data.csv", 1, b"new,")
    assert first.status_code == 200
    assert set(first.get_json()) == MODEL_KEYS and first.get_json()["path"] == "data.csv"
    put_chunk(api, "data.csv", 2, b"rows,")
    assert api.get("/api/contents/data.csv").get_json()["content"] == "old"
    put_chunk(api, "data.csv", 1, b"restart,")  # the client gave up and started again
    assert put_chunk(api, "data.csv", -1, b"end").status_code == 200
    assert api.get("/api/contents/data.csv").get_json()["content"] == "restart,end"


@pytest.mark.parametrize("chunk", [0, -2, "2", True, 1.5])
def test_bad_chunk_numbers_are_400(api, chunk):
    put_text(api, "f.txt", "keep")
    assert_error(put_chunk(api, "f.txt", chunk, b"x"), 400)
    assert api.store.read("f.txt") == b"keep"


def test_chunk_errors_are_400_and_lose_nothing(api):
    put_text(api, "f.txt", "keep")
    body = assert_error(put_chunk(api, "f.txt", 3, b"x"), 400)
    assert "chunk 1" in body["message"]
    nb_chunk = put(api, "n.ipynb", type="notebook", format="json", chunk=1, content=notebook("x"))
    message = 'File type "notebook" is not supported for large file transfer'
    assert assert_error(nb_chunk, 400)["message"] == message
    assert_error(put(api, "f.txt", type="file", format="base64", chunk=2), 400)
    assert api.store.read("f.txt") == b"keep"
    assert api.get("/api/contents/n.ipynb").status_code == 404


def test_request_body_limit_is_413_json_naming_the_limit(make_app):
    client = make_app({"server": {"max_body_size": 1000}}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    response = put_text(client, "big.txt", "x" * 2000)
    body = assert_error(response, 413)
    assert "1000 bytes" in body["message"]
    assert client.get("/api/contents/big.txt").status_code == 404


def test_store_answers_are_logged_in_one_line_at_most(make_app, caplog):
    client = make_app({"store": {"class": "memory", "max_bytes": 100}}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    with caplog.at_level(logging.DEBUG):
        assert_error(client.get("/api/contents/missing.txt"), 404)
        assert_error(client.get("/files/missing.txt"), 404)
        assert_error(client.delete("/api/contents/missing.txt"), 404)
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == [], "4xx: the client's business"
        assert_error(put_text(client, "big.txt", "x" * 200), 507)
    (line,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "PUT /api/contents/big.txt" in line.getMessage() and "full" in line.getMessage()
    assert line.exc_info is None and "Traceback" not in caplog.text


# -- POST ------------------------------------------------------------------------------
def test_new_untitled_names(api):
    def new(**body):
        response = api.post("/api/contents", json=body)
        assert response.status_code == 201
        path = response.get_json()["path"]
        assert response.headers["Location"] == "/api/contents/" + path.replace(" ", "%20")
        return response.get_json()["name"]

    notebooks = [new(type="notebook") for _ in range(3)]
    assert notebooks == ["Untitled.ipynb", "Untitled1.ipynb", "Untitled2.ipynb"]
    assert [new(type="file", ext=".txt") for _ in range(2)] == ["untitled.txt", "untitled1.txt"]
    folders = [new(type="directory") for _ in range(3)]
    assert folders == ["Untitled Folder", "Untitled Folder 1", "Untitled Folder 2"]
    assert new(ext=".ipynb") == "Untitled3.ipynb"
    model = api.get("/api/contents/Untitled.ipynb").get_json()
    assert model["content"]["cells"] == [] and model["content"]["nbformat"] == 4
    assert api.get("/api/contents/Untitled Folder").get_json()["type"] == "directory"


@pytest.mark.parametrize("ext", ["/../evil.txt", "/x", "\\..\\x", ".txt\u0000", "/.."])
def test_new_untitled_refuses_extensions_that_are_paths(api, ext):
    assert_error(api.post("/api/contents", json={"type": "file", "ext": ext}), 400)
    assert api.store.list("") == []


def test_new_untitled_in_a_subfolder_and_errors(api):
    api.put("/api/contents/sub", json={"type": "directory"})
    response = api.post("/api/contents/sub", json={"type": "notebook"})
    assert response.get_json()["path"] == "sub/Untitled.ipynb"
    assert_error(api.post("/api/contents/nowhere", json={"type": "notebook"}), 404)
    assert_error(api.post("/api/contents/sub/Untitled.ipynb", json={"type": "notebook"}), 400)


def test_copy_names(api):
    put_notebook(api, "a.ipynb", notebook("original"))
    put_text(api, "data.tar.gz", "archive")
    api.put("/api/contents/other", json={"type": "directory"})

    def copy(source, target=""):
        response = api.post(f"/api/contents/{target}", json={"copy_from": source})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["path"]

    assert copy("a.ipynb") == "a-Copy1.ipynb"
    assert copy("a.ipynb") == "a-Copy2.ipynb"
    assert copy("a-Copy1.ipynb") == "a-Copy3.ipynb"
    assert copy("data.tar.gz") == "data-Copy1.tar.gz"
    assert copy("a.ipynb", "other") == "other/a.ipynb"
    assert api.store.read("a-Copy1.ipynb") == api.store.read("a.ipynb")
    assert_error(api.post("/api/contents", json={"copy_from": "missing.ipynb"}), 404)


def test_copying_a_directory_is_a_deep_copy_named_as_jupyter_names_it(api):
    api.put("/api/contents/foo", json={"type": "directory"})
    put_text(api, "foo/a.txt", "a")
    api.put("/api/contents/foo/inner", json={"type": "directory"})
    put_notebook(api, "foo/inner/n.ipynb", notebook("deep"))
    response = api.post("/api/contents", json={"copy_from": "foo"})
    assert response.status_code == 201
    model = response.get_json()
    assert (model["name"], model["path"], model["type"]) == ("foo-Copy1", "foo-Copy1", "directory")
    assert response.headers["Location"] == "/api/contents/foo-Copy1"
    assert api.post("/api/contents", json={"copy_from": "foo"}).get_json()["path"] == "foo-Copy2"
    inner = api.post("/api/contents/foo", json={"copy_from": "foo/inner"})
    assert inner.get_json()["path"] == "foo/inner-Copy1"
    copied = api.get("/api/contents/foo-Copy1/inner/n.ipynb").get_json()
    assert copied["content"]["cells"][0]["source"] == "deep"
    assert api.store.read("foo-Copy1/a.txt") == b"a"
    assert_error(api.post("/api/contents/foo", json={"copy_from": "foo"}), 400)


def test_copying_a_directory_into_a_folder_that_does_not_exist_yet_creates_it(api):
    api.put("/api/contents/d", json={"type": "directory"})
    put_text(api, "d/a.txt", "a")
    put_notebook(api, "d/n.ipynb", notebook("deep"))
    put_text(api, "v.txt", "v")
    for target in ("missing", "new/deeper"):
        response = api.post(f"/api/contents/{target}", json={"copy_from": "d"})
        assert response.status_code == 201, response.get_json()
        model = response.get_json()
        assert (model["path"], model["type"]) == (f"{target}/d", "directory"), "Jupyter Server 2.21's answer"
        assert response.headers["Location"] == f"/api/contents/{target}/d"
        assert api.store.read(f"{target}/d/a.txt") == b"a"
        copied = api.get(f"/api/contents/{target}/d/n.ipynb").get_json()
        assert copied["content"]["cells"][0]["source"] == "deep"
    assert api.store.stat("new").kind == "directory"
    # A file still needs an existing folder; a folder cannot be made below a file, nor inside
    # the folder being copied; a missing source is 404: each leaves nothing behind.
    assert_error(api.post("/api/contents/elsewhere", json={"copy_from": "v.txt"}), 404)
    assert_error(api.post("/api/contents/v.txt/sub", json={"copy_from": "d"}), 400)
    assert_error(api.post("/api/contents/d/inside", json={"copy_from": "d"}), 400)
    assert_error(api.post("/api/contents/nowhere", json={"copy_from": "nothing"}), 404)
    assert {entry.name for entry in api.store.list("")} == {"d", "missing", "new", "v.txt"}
    assert {entry.name for entry in api.store.list("d")} == {"a.txt", "n.ipynb"}


def test_a_copy_that_does_not_fit_takes_back_the_folders_it_made(make_app):
    client = make_app({"store": {"class": "memory", "max_bytes": 150}}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    client.put("/api/contents/d", json={"type": "directory"})
    assert put_text(client, "d/a.txt", "a" * 100).status_code == 201
    assert_error(client.post("/api/contents/new/deeper", json={"copy_from": "d"}), 507)
    assert [child["name"] for child in client.get("/api/contents").get_json()["content"]] == ["d"]


#: (target folder, copy_from): each is 400 `Cannot copy file or directory '/<target>'` from
#: Jupyter Server 2.21 without allow_hidden, whichever side is hidden, before it looks for
#: the source or the target folder.
HIDDEN_COPIES = [
    (".hidden", "v.txt"), ("", ".hidden/x.txt"), ("", ".hidden"), ("missing", ".hidden"),
    ("", ".nothere"), (".nothere", "v.txt"), (".nothere", ".nothere2"), (".hidden", "nothere.txt"),
    (".hidden/sub", ".hidden/x.txt"), ("d/.new", "v.txt"), ("", "d/.inner"),
]


def hidden_copy_tree(client):
    store = client.application.extensions["nbflask"].store
    for folder in (".hidden", ".hidden/sub", "d", "d/.inner"):
        store.mkdir(folder)
    store.write(".hidden/x.txt", b"x")
    store.write("v.txt", b"v")
    return store


def test_copying_to_or_from_a_hidden_path_is_400_before_any_other_check(make_app):
    client = make_app().test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    store = hidden_copy_tree(client)
    for target, source in HIDDEN_COPIES:
        body = assert_error(client.post(f"/api/contents/{target}", json={"copy_from": source}), 400)
        assert body["message"] == f"Cannot copy file or directory '/{target}'", (target, source)
    body = assert_error(client.post("/api/contents/v.txt", json={"copy_from": ".hidden/x.txt"}), 400)
    assert body["message"] == "Cannot POST to files, use PUT instead.", "Jupyter checks this first"
    assert {entry.name for entry in store.list("")} == {".hidden", "d", "v.txt"}
    assert {entry.name for entry in store.list(".hidden")} == {"sub", "x.txt"}
    assert [entry.name for entry in store.list("d")] == [".inner"]


def test_allow_hidden_copies_to_and_from_hidden_paths(make_app):
    client = make_app({"store": {"allow_hidden": True}}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    store = hidden_copy_tree(client)
    expected = {
        (".hidden", "v.txt"): (201, ".hidden/v.txt"), ("", ".hidden/x.txt"): (201, "x.txt"),
        ("missing", ".hidden"): (201, "missing/.hidden"), ("", ".nothere"): (404, None),
        (".hidden", "nothere.txt"): (404, None), (".nothere", ".nothere2"): (404, None),
    }
    for (target, source), (status, path) in expected.items():
        response = client.post(f"/api/contents/{target}", json={"copy_from": source})
        assert response.status_code == status, (target, source, response.get_json())
        assert response.get_json().get("path") == path
    assert store.read("missing/.hidden/x.txt") == b"x"


# -- PATCH -----------------------------------------------------------------------------
def test_rename(api):
    put_notebook(api, "old.ipynb")
    api.put("/api/contents/dir", json={"type": "directory"})
    response = api.patch("/api/contents/old.ipynb", json={"path": "dir/new.ipynb"})
    assert response.status_code == 200
    assert response.headers["Location"] == "/api/contents/dir/new.ipynb"
    model = response.get_json()
    assert set(model) == MODEL_KEYS
    assert (model["path"], model["name"]) == ("dir/new.ipynb", "new.ipynb")
    assert_error(api.get("/api/contents/old.ipynb"), 404)
    assert api.patch("/api/contents/dir/new.ipynb", json={"path": "dir/new.ipynb"}).status_code == 200


def test_rename_errors(api):
    put_text(api, "a.txt", "a")
    put_text(api, "b.txt", "b")
    assert_error(api.patch("/api/contents/a.txt", json={"path": "b.txt"}), 409)
    assert api.store.read("b.txt") == b"b"
    assert_error(api.patch("/api/contents/missing.txt", json={"path": "c.txt"}), 404)
    assert_error(api.patch("/api/contents/a.txt", json={"path": "nodir/a.txt"}), 404)
    assert_error(api.patch("/api/contents/a.txt"), 400)
    assert_error(api.patch("/api/contents/a.txt", json={"name": "x"}), 400)
    assert_error(api.patch("/api/contents", json={"path": "root"}), 400)


# -- DELETE ----------------------------------------------------------------------------
def test_delete(api):
    put_text(api, "a.txt", "a")
    api.put("/api/contents/empty", json={"type": "directory"})
    api.put("/api/contents/full", json={"type": "directory"})
    put_text(api, "full/keep.txt", "keep")
    put_notebook(api, "full/n.ipynb")
    response = api.delete("/api/contents/a.txt")
    assert response.status_code == 204 and response.data == b""
    assert api.delete("/api/contents/empty").status_code == 204
    assert api.delete("/api/contents/full").status_code == 204, "as Jupyter's defaults do"
    assert api.store.list("") == []
    assert_error(api.get("/api/contents/full/keep.txt"), 404)
    assert_error(api.delete("/api/contents/a.txt"), 404)
    assert_error(api.delete("/api/contents"), 400)
    assert_error(api.delete("/api/contents/../x"), 400)


# -- checkpoints -----------------------------------------------------------------------
def test_checkpoints_round_trip(api):
    put_notebook(api, "n.ipynb", notebook("version 1"))
    (first,) = api.get("/api/contents/n.ipynb/checkpoints").get_json()
    assert set(first) == {"id", "last_modified"}, "the first save of a notebook makes a checkpoint"
    assert first["id"] == "checkpoint"
    assert api.delete("/api/contents/n.ipynb/checkpoints/checkpoint").status_code == 204
    assert api.get("/api/contents/n.ipynb/checkpoints").get_json() == []
    created = api.post("/api/contents/n.ipynb/checkpoints")
    assert created.status_code == 201
    checkpoint = created.get_json()
    assert set(checkpoint) == {"id", "last_modified"} and checkpoint["id"] == "checkpoint"
    assert created.headers["Location"] == "/api/contents/n.ipynb/checkpoints/checkpoint"
    assert api.get("/api/contents/n.ipynb/checkpoints").get_json() == [checkpoint]
    put_notebook(api, "n.ipynb", notebook("version 2"))
    assert api.get("/api/contents/n.ipynb/checkpoints").get_json() == [checkpoint], "saves add none"
    restored = api.post("/api/contents/n.ipynb/checkpoints/checkpoint")
    assert restored.status_code == 204
    model = api.get("/api/contents/n.ipynb").get_json()
    assert model["content"]["cells"][0]["source"] == "version 1"
    assert api.delete("/api/contents/n.ipynb/checkpoints/checkpoint").status_code == 204
    assert api.get("/api/contents/n.ipynb/checkpoints").get_json() == []
    put_notebook(api, "n.ipynb", notebook("version 3"))
    assert len(api.get("/api/contents/n.ipynb/checkpoints").get_json()) == 1
    put_text(api, "plain.txt", "text")
    assert api.get("/api/contents/plain.txt/checkpoints").get_json() == []
    assert_error(api.post("/api/contents/n.ipynb/checkpoints/nope"), 404)
    assert_error(api.delete("/api/contents/n.ipynb/checkpoints/nope"), 404)
    assert api.get("/api/contents/missing.ipynb/checkpoints").get_json() == []  # as Jupyter answers
    assert_error(api.post("/api/contents/missing.ipynb/checkpoints"), 404)


def test_one_checkpoint_per_file_and_the_next_post_overwrites_it(api):
    put_notebook(api, "n.ipynb", notebook("version 1"))
    put_notebook(api, "n.ipynb", notebook("version 2"))
    put_notebook(api, "n.ipynb", notebook("version 3"))
    (auto,) = api.get("/api/contents/n.ipynb/checkpoints").get_json()
    api.post("/api/contents/n.ipynb/checkpoints/checkpoint")
    assert api.get("/api/contents/n.ipynb").get_json()["content"]["cells"][0]["source"] == "version 1"
    put_notebook(api, "n.ipynb", notebook("version 4"))
    again = api.post("/api/contents/n.ipynb/checkpoints").get_json()
    assert again["id"] == "checkpoint" and again["last_modified"] >= auto["last_modified"]
    assert api.get("/api/contents/n.ipynb/checkpoints").get_json() == [again]
    put_notebook(api, "n.ipynb", notebook("version 5"))
    api.post("/api/contents/n.ipynb/checkpoints/checkpoint")
    assert api.get("/api/contents/n.ipynb").get_json()["content"]["cells"][0]["source"] == "version 4"
    put_text(api, "t.txt", "1")
    for _ in range(3):
        api.post("/api/contents/t.txt/checkpoints")
    assert [c["id"] for c in api.get("/api/contents/t.txt/checkpoints").get_json()] == ["checkpoint"]


def multiple_client(make_app, **store):
    client = make_app({"store": {"checkpoints": "multiple", **store}}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    return client


def test_several_checkpoints_are_opt_in_and_pruned_past_the_configured_count(make_app):
    client = multiple_client(make_app, max_checkpoints=2)
    put_text(client, "f.txt", "0")
    ids = []
    for i in range(4):
        put_text(client, "f.txt", str(i))
        ids.append(client.post("/api/contents/f.txt/checkpoints").get_json()["id"])
    assert len(set(ids)) == 4 and "checkpoint" not in ids
    assert [c["id"] for c in client.get("/api/contents/f.txt/checkpoints").get_json()] == ids[-2:]
    put_notebook(client, "n.ipynb")
    put_notebook(client, "n.ipynb")
    assert len(client.get("/api/contents/n.ipynb/checkpoints").get_json()) == 1, "saves add none"


def test_going_back_to_single_checkpoints_drops_the_extra_ones_at_the_next_post(make_app):
    several = multiple_client(make_app)
    put_text(several, "f.txt", "old")
    several.post("/api/contents/f.txt/checkpoints")
    several.post("/api/contents/f.txt/checkpoints")
    single = make_app().test_client()
    single.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    assert len(single.get("/api/contents/f.txt/checkpoints").get_json()) == 2
    single.post("/api/contents/f.txt/checkpoints")
    assert [c["id"] for c in single.get("/api/contents/f.txt/checkpoints").get_json()] == ["checkpoint"]


def test_checkpoints_setting_is_checked_at_start_up(make_app):
    with pytest.raises(ConfigError, match="store.checkpoints: expected single or multiple"):
        make_app({"store": {"checkpoints": "many"}})


# -- trust -----------------------------------------------------------------------------
HTML_OUTPUT = [
    {"output_type": "display_data", "data": {"text/html": "<script>alert(1)</script>"}, "metadata": {}}
]


def code_cells_trusted(api, path):
    cells = api.get(f"/api/contents/{path}").get_json()["content"]["cells"]
    return [cell["metadata"].get("trusted") for cell in cells if cell["cell_type"] == "code"]


def test_trust(api):
    put_notebook(api, "n.ipynb", notebook("x", outputs=HTML_OUTPUT))
    assert code_cells_trusted(api, "n.ipynb") == [False]
    assert api.post("/api/contents/n.ipynb/trust").status_code == 201
    assert code_cells_trusted(api, "n.ipynb") == [True]
    trusted = api.get("/api/contents/n.ipynb").get_json()["content"]
    trusted["cells"][0]["source"] = "y"
    put_notebook(api, "n.ipynb", trusted)
    assert code_cells_trusted(api, "n.ipynb") == [True], "a save of trusted cells stays trusted"
    assert b'"trusted"' not in api.store.read("n.ipynb")
    assert_error(api.post("/api/contents/missing.ipynb/trust"), 404)


def test_notebooks_without_unsafe_output_are_trusted(api):
    put_notebook(api, "plain.ipynb", notebook("1"))
    assert code_cells_trusted(api, "plain.ipynb") == [True]


def test_signing_secret_is_private(api, tmp_path_factory):
    import os
    import stat

    from nbflask.contents.trust import SECRET_NAME
    from nbflask.runtime import data_dir

    secret = data_dir() / SECRET_NAME
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert os.stat(secret).st_size == 64


# -- ETag / If-Match -------------------------------------------------------------------
def test_if_match_lets_the_current_version_save(api):
    etag = put_notebook(api, "n.ipynb").headers["ETag"]
    assert api.get("/api/contents/n.ipynb").headers["ETag"] == etag
    response = api.put("/api/contents/n.ipynb", json={"type": "notebook", "content": notebook("2")},
                       headers={"If-Match": etag})
    assert response.status_code == 200
    assert response.headers["ETag"] != etag


def test_if_match_refuses_a_stale_save_with_412(api):
    first = put_notebook(api, "n.ipynb", notebook("tab 1")).headers["ETag"]
    put_notebook(api, "n.ipynb", notebook("tab 2"))
    before = api.store.read("n.ipynb")
    response = api.put("/api/contents/n.ipynb", json={"type": "notebook", "content": notebook("lost")},
                       headers={"If-Match": first})
    assert_error(response, 412)
    assert api.store.read("n.ipynb") == before
    weak = api.put("/api/contents/n.ipynb", json={"type": "notebook", "content": notebook("lost")},
                   headers={"If-Match": "W/" + api.get("/api/contents/n.ipynb").headers["ETag"]})
    assert_error(weak, 412)


def test_if_match_on_rename_delete_and_missing(api):
    stale = put_text(api, "f.txt", "1").headers["ETag"]
    current = put_text(api, "f.txt", "2").headers["ETag"]
    assert_error(api.patch("/api/contents/f.txt", json={"path": "g.txt"}, headers={"If-Match": stale}), 412)
    assert_error(api.delete("/api/contents/f.txt", headers={"If-Match": stale}), 412)
    assert api.store.read("f.txt") == b"2"
    new = {"type": "file", "format": "text", "content": "x"}
    assert_error(api.put("/api/contents/new.txt", json=new, headers={"If-Match": "*"}), 412)
    assert not api.store.exists("new.txt")
    assert api.delete("/api/contents/f.txt", headers={"If-Match": f'"nope", {current}'}).status_code == 204


def test_without_if_match_saves_overwrite_as_in_jupyter(api):
    put_text(api, "f.txt", "1")
    assert put_text(api, "f.txt", "2").status_code == 200
    assert api.store.read("f.txt") == b"2"


# -- hidden files ----------------------------------------------------------------------
def test_hidden_files_are_invisible_by_default(api):
    api.store.write(".secret", b"s")
    api.store.mkdir(".config")
    api.store.write(".config/x.txt", b"x")
    assert api.get("/api/contents").get_json()["content"] == []
    for path in (".secret", ".config", ".config/x.txt"):
        assert_error(api.get(f"/api/contents/{path}"), 404)
        assert_error(api.get(f"/files/{path}"), 404)
    assert_error(put_text(api, ".new", "x"), 400)
    assert_error(api.delete("/api/contents/.secret"), 400)
    assert_error(api.delete("/api/contents/.config"), 400)
    assert api.store.read(".config/x.txt") == b"x"
    put_text(api, "visible.txt", "v")
    assert_error(api.patch("/api/contents/visible.txt", json={"path": ".hidden.txt"}), 400)
    assert_error(api.post("/api/contents", json={"copy_from": ".secret"}), 400)
    assert api.store.read(".secret") == b"s"


def test_allow_hidden_shows_them(make_app):
    client = make_app({"store": {"allow_hidden": True}}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    assert put_text(client, ".env", "A=1").status_code == 201
    names = [child["name"] for child in client.get("/api/contents").get_json()["content"]]
    assert names == [".env"]
    assert client.get("/api/contents/.env").get_json()["content"] == "A=1"


def links_into_a_hidden_folder(root_dir: str) -> None:
    """`link` -> `.hidden` (a folder) and `x-link.txt` -> `.hidden/x.txt`, both visible names."""
    os.mkdir(os.path.join(root_dir, ".hidden"))
    with open(os.path.join(root_dir, ".hidden", "x.txt"), "w") as handle:
        handle.write("secret content")
    os.symlink(".hidden", os.path.join(root_dir, "link"))
    os.symlink(os.path.join(".hidden", "x.txt"), os.path.join(root_dir, "x-link.txt"))


def test_a_visible_symlink_into_a_hidden_folder_is_refused_as_files_refuses_it(make_app, root_dir):
    client = make_app().test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    links_into_a_hidden_folder(root_dir)
    put_text(client, "v.txt", "visible")
    assert [child["name"] for child in client.get("/api/contents").get_json()["content"]] == ["v.txt"]
    for path in ("link", "link/x.txt", "x-link.txt"):
        for url in (f"/api/contents/{path}", f"/api/contents/{path}/checkpoints", f"/files/{path}"):
            response = client.get(url)
            assert response.status_code == 404, url
            assert b"secret content" not in response.data
        assert_error(client.delete(f"/api/contents/{path}"), 400)
        assert_error(client.patch(f"/api/contents/{path}", json={"path": "moved"}), 400)
        assert_error(client.post("/api/contents", json={"copy_from": path}), 400)
    assert_error(put_text(client, "link/new.txt", "x"), 400)
    assert_error(put_text(client, "x-link.txt", "overwritten"), 400)
    assert_error(client.patch("/api/contents/v.txt", json={"path": "link/v.txt"}), 400)
    assert_error(client.post("/api/contents/link", json={"copy_from": "v.txt"}), 400)
    assert_error(client.post("/api/contents/link", json={"type": "notebook"}), 400)
    assert sorted(os.listdir(os.path.join(root_dir, ".hidden"))) == ["x.txt"]
    with open(os.path.join(root_dir, ".hidden", "x.txt")) as handle:
        assert handle.read() == "secret content"
    assert sorted(os.listdir(root_dir)) == [".hidden", "link", "v.txt", "x-link.txt"]


def test_allow_hidden_serves_links_into_hidden_folders(make_app, root_dir):
    client = make_app({"store": {"allow_hidden": True}}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    links_into_a_hidden_folder(root_dir)
    names = {child["name"] for child in client.get("/api/contents").get_json()["content"]}
    assert names == {".hidden", "link", "x-link.txt"}
    assert client.get("/api/contents/link/x.txt").get_json()["content"] == "secret content"
    assert client.get("/files/x-link.txt").data == b"secret content"
    assert put_text(client, "link/new.txt", "n").status_code == 201
    assert sorted(os.listdir(os.path.join(root_dir, ".hidden"))) == ["new.txt", "x.txt"]


def folder_with_links(root_dir: str) -> None:
    """`d` holding a hidden file, links into the hidden folder and to a hidden file (the
    attack: copy `d`, then read the copy), a link to a visible folder and a plain file."""
    links_into_a_hidden_folder(root_dir)
    os.makedirs(os.path.join(root_dir, "d", ".private"))
    os.mkdir(os.path.join(root_dir, "shared"))
    for path, text in (("d/f.txt", "f"), ("d/.env", "A=1"), ("d/.private/p.txt", "p"), ("shared/s.txt", "s")):
        with open(os.path.join(root_dir, path), "w") as handle:
            handle.write(text)
    os.symlink("../.hidden", os.path.join(root_dir, "d", "l"))
    os.symlink("../.hidden/x.txt", os.path.join(root_dir, "d", "x-link.txt"))
    os.symlink("../shared", os.path.join(root_dir, "d", "shared-link"))


def tree(root: str) -> dict[str, str | None]:
    """Every entry under `root` (links followed), files with their text, folders None."""
    found: dict[str, str | None] = {}
    for folder, dirs, files in os.walk(root, followlinks=True):
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            with open(os.path.join(folder, name)) as handle:
                found[os.path.relpath(os.path.join(folder, name), root)] = handle.read()
    return found


def test_copying_a_folder_leaves_out_what_it_hides(make_app, root_dir):
    client = make_app().test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    folder_with_links(root_dir)
    assert client.post("/api/contents", json={"copy_from": "d"}).status_code == 201
    assert client.get("/api/contents/d-Copy1/l/x.txt").status_code == 404
    # A link to a visible folder is copied as what it leads to, as Jupyter's copy does.
    copied = tree(os.path.join(root_dir, "d-Copy1"))
    assert copied == {"f.txt": "f", "shared-link": None, "shared-link/s.txt": "s"}
    assert not os.path.islink(os.path.join(root_dir, "d-Copy1", "shared-link"))


def test_allow_hidden_copies_a_folder_whole(make_app, root_dir):
    client = make_app({"store": {"allow_hidden": True}}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    folder_with_links(root_dir)
    assert client.post("/api/contents", json={"copy_from": "d"}).status_code == 201
    assert tree(os.path.join(root_dir, "d-Copy1")) == tree(os.path.join(root_dir, "d"))


@pytest.mark.parametrize("link, into", [("..", ""), (".", ""), ("../..", ""), ("../out", "out")])
def test_a_link_to_a_folder_holding_the_folder_or_the_copy_is_a_400_that_leaves_nothing(
    make_app, root_dir, link, into
):
    """`loop -> ..` made the copy recurse until Python gave up (400 after ~10 s, the gevent
    loop held throughout, ~480 folders left); `../out` leads to where the copy goes."""
    client = make_app().test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    os.makedirs(os.path.join(root_dir, "top", "d"))
    os.mkdir(os.path.join(root_dir, "top", "out"))
    with open(os.path.join(root_dir, "top", "d", "f.txt"), "w") as handle:
        handle.write("x")
    os.symlink(link, os.path.join(root_dir, "top", "d", "loop"))
    before = sorted(os.walk(root_dir))
    url = "/api/contents/top" + (f"/{into}" if into else "")
    body = assert_error(client.post(url, json={"copy_from": "top/d"}), 400)
    assert body["message"].startswith("cannot copy 'top/d/loop': it links to a folder that holds it")
    assert sorted(os.walk(root_dir)) == before


# -- file modes (file store) -----------------------------------------------------------
def mode_of(root_dir: str, path: str) -> int:
    return stat.S_IMODE(os.stat(os.path.join(root_dir, path)).st_mode)


def staging_files(root_dir: str) -> list[str]:
    return [name for name in os.listdir(root_dir) if name.startswith(".~nbflask-upload-")]


def test_a_private_notebook_s_checkpoint_copy_and_upload_stay_private(make_app, root_dir):
    client = make_app().test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    put_notebook(client, "p.ipynb")
    put_text(client, "p.txt", "private")
    client.put("/api/contents/secret", json={"type": "directory"})
    put_text(client, "secret/s.txt", "s")
    for path, mode in (("p.ipynb", 0o600), ("p.txt", 0o600), ("secret/s.txt", 0o600), ("secret", 0o700)):
        os.chmod(os.path.join(root_dir, path), mode)
    assert client.post("/api/contents/p.ipynb/checkpoints").status_code == 201
    assert mode_of(root_dir, ".ipynb_checkpoints/p-checkpoint.ipynb") == 0o600, "Jupyter keeps 0600"
    for source, copy in (("p.ipynb", "p-Copy1.ipynb"), ("p.txt", "p-Copy1.txt"), ("secret", "secret-Copy1")):
        assert client.post("/api/contents", json={"copy_from": source}).get_json()["path"] == copy
    assert mode_of(root_dir, "p-Copy1.ipynb") == mode_of(root_dir, "p-Copy1.txt") == 0o600
    assert mode_of(root_dir, ".ipynb_checkpoints/p-Copy1-checkpoint.ipynb") == 0o600
    assert (mode_of(root_dir, "secret-Copy1"), mode_of(root_dir, "secret-Copy1/s.txt")) == (0o700, 0o600)
    # A chunked upload over the private file: its staging file is private from chunk 1 on,
    # and the file stays private (Jupyter writes the chunks into the file itself).
    put_chunk(client, "p.txt", 1, b"one,")
    (staging,) = staging_files(root_dir)
    assert mode_of(root_dir, staging) == 0o600
    assert put_chunk(client, "p.txt", -1, b"two").status_code == 200
    assert (mode_of(root_dir, "p.txt"), staging_files(root_dir)) == (0o600, [])
    # A new file, uploaded or copied from a public one, gets the mode any new file gets.
    put_text(client, "plain.txt", "plain")
    default = mode_of(root_dir, "plain.txt")
    put_chunk(client, "new.bin", 1, b"a")
    assert put_chunk(client, "new.bin", -1, b"b").status_code == 201
    assert client.post("/api/contents", json={"copy_from": "plain.txt"}).status_code == 201
    assert mode_of(root_dir, "new.bin") == mode_of(root_dir, "plain-Copy1.txt") == default
    # A checkpoint keeps the mode the notebook has now, even over an older checkpoint.
    os.chmod(os.path.join(root_dir, "p.ipynb"), 0o640)
    assert client.post("/api/contents/p.ipynb/checkpoints").status_code == 201
    assert mode_of(root_dir, ".ipynb_checkpoints/p-checkpoint.ipynb") == 0o640


# -- large notebooks -------------------------------------------------------------------
def test_large_notebook_round_trip_streams_the_model(api):
    sources = [f"cell {i}\n" + "y" * 3000 for i in range(1000)]
    put_notebook(api, "big.ipynb", notebook(*sources))
    response = api.get("/api/contents/big.ipynb")
    assert response.is_streamed
    assert int(response.headers["Content-Length"]) == len(response.data) > 3_000_000
    cells = response.get_json()["content"]["cells"]
    assert [cell["source"] for cell in cells] == sources


@pytest.mark.parametrize(
    ("content", "trust_status"),
    [
        ({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [1, "two", None]}, 201),
        ({"nbformat": 4, "nbformat_minor": {"odd": True}, "cells": [[]]}, 400),
    ],
)
def test_oddly_shaped_notebooks_are_kept_and_served(api, content, trust_status):
    saved = put_notebook(api, "odd.ipynb", content)
    assert saved.status_code == 201
    assert saved.get_json()["message"].startswith("Notebook validation failed")
    assert json.loads(api.store.read("odd.ipynb"))["cells"] == content["cells"]
    served = api.get("/api/contents/odd.ipynb")
    assert served.status_code == 200
    assert served.get_json()["content"]["cells"] == content["cells"]
    assert served.get_json()["message"].startswith("Notebook validation failed")
    trusted = api.post("/api/contents/odd.ipynb/trust")
    assert trusted.status_code == trust_status, "signing needs the notebook's metadata"
