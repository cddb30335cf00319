"""A store with no room left, for real: the file store on a small tmpfs (mounting one needs
root), the memory store at its `max_bytes`. A client that is told 507 finds nothing it did
not ask for afterwards, and an upload that lost a chunk is never completed without it."""

from __future__ import annotations

import base64
import json

import nbformat
import pytest
from conftest import TOKEN
from disks import fill_up_to, small_disk

from nbflask.stores.base import BadContent, StoreFull
from nbflask.stores.memory import FAILED_UPLOAD_SECONDS, MemoryStore

#: Room left in the store when a test starts: a 40 KB notebook fits, its checkpoint does not.
ROOM = 60 * 1024


@pytest.fixture(params=["file", "memory"])
def client(request, make_app, tmp_path):
    if request.param == "memory":
        store = {"class": "memory", "max_bytes": ROOM}
    else:
        disk = small_disk(tmp_path / "disk", "1m", request)
        (disk / "root").mkdir()
        fill_up_to(disk, ROOM)
        store = {"class": "file", "root_dir": str(disk / "root")}
    test_client = make_app({"store": store}).test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    return test_client


def notebook_of(size: int) -> dict:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("x" * size))
    return json.loads(nbformat.writes(nb))


def assert_507(response) -> None:
    assert response.status_code == 507, response.get_data(as_text=True)
    assert set(response.get_json()) == {"message", "reason"}


def listing(client) -> list[str]:
    return sorted(child["name"] for child in client.get("/api/contents").get_json()["content"])


def test_a_new_notebook_whose_checkpoint_does_not_fit_is_507_and_not_created(client):
    big = notebook_of(40_000)
    assert_507(client.put("/api/contents/big.ipynb", json={"type": "notebook", "content": big}))
    assert client.get("/api/contents/big.ipynb").status_code == 404
    assert listing(client) == []
    small = {"type": "file", "format": "text", "content": "the room is still there"}
    assert client.put("/api/contents/small.txt", json=small).status_code == 201


def test_a_notebook_copy_whose_checkpoint_does_not_fit_is_507_and_not_created(client):
    model = {"type": "notebook", "content": notebook_of(18_000)}
    assert client.put("/api/contents/n.ipynb", json=model).status_code == 201
    assert_507(client.post("/api/contents", json={"copy_from": "n.ipynb"}))
    assert listing(client) == ["n.ipynb"]


def chunk(client, number: int, data: bytes):
    body = {"type": "file", "format": "base64", "chunk": number, "content": base64.b64encode(data).decode()}
    return client.put("/api/contents/data.bin", json=body)


def test_after_a_chunk_that_did_not_fit_the_upload_is_refused_until_chunk_one(client):
    old = {"type": "file", "format": "text", "content": "old"}
    assert client.put("/api/contents/data.bin", json=old).status_code == 201
    assert chunk(client, 1, b"a" * 8000).status_code == 200
    assert_507(chunk(client, 2, b"b" * 80_000))
    for number in (3, -1):
        response = chunk(client, number, b"end")
        assert response.status_code == 400, response.get_json()
        assert "start it again from chunk 1" in response.get_json()["message"]
    assert client.get("/api/contents/data.bin").get_json()["content"] == "old"
    assert listing(client) == ["data.bin"]
    assert chunk(client, 1, b"again,").status_code == 200
    assert chunk(client, -1, b"end").status_code == 200
    assert client.get("/api/contents/data.bin").get_json()["content"] == "again,end"


def test_the_memory_store_forgets_a_failed_upload_after_an_hour():
    """The marks of failed uploads were a set that only a new chunk 1 of the same path
    shrank: every failed upload never started again stayed in memory for good. Now a mark
    lasts an hour, as the file store's (swept then), and each new failure drops the old."""
    store = MemoryStore(max_bytes=ROOM)
    for number in range(100):
        store.stage_chunk(f"up-{number}.bin", 1, b"x")
        with pytest.raises(StoreFull):
            store.stage_chunk(f"up-{number}.bin", 2, b"x" * ROOM)
    with pytest.raises(BadContent, match="start it again from chunk 1"):
        store.stage_chunk("up-0.bin", 3, b"x")
    for path in [f"up-{number}.bin" for number in range(99)]:  # an hour passes for them
        store._failed_uploads[path] -= FAILED_UPLOAD_SECONDS + 1
    with pytest.raises(BadContent, match="came before chunk 1"):
        store.stage_chunk("up-0.bin", 3, b"x")
    store.stage_chunk("new.bin", 1, b"x")
    with pytest.raises(StoreFull):
        store.stage_chunk("new.bin", 2, b"x" * ROOM)
    assert list(store._failed_uploads) == ["up-99.bin", "new.bin"]
    with pytest.raises(BadContent, match="start it again from chunk 1"):
        store.commit_upload("up-99.bin", b"last")
