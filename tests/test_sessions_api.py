"""`/api/sessions`: create (idempotent per path), get, list, PATCH, DELETE."""

from __future__ import annotations

import pytest
from kernelapp import kernel_client


@pytest.fixture
def kclient(make_app):
    with kernel_client(make_app) as client:
        yield client


def create(client, path="work/a.ipynb", **extra):
    body = {"path": path, "name": "a.ipynb", "type": "notebook", "kernel": {"name": "python3"}, **extra}
    return client.post("/api/sessions", json=body)


def test_create_is_idempotent_per_path_and_listed(kclient):
    first = create(kclient)
    assert first.status_code == 201
    model = first.get_json()
    assert model["path"] == "work/a.ipynb" and model["type"] == "notebook" and model["name"] == "a.ipynb"
    assert model["kernel"]["name"] == "python3" and model["kernel"]["execution_state"] == "idle"
    assert first.headers["Location"] == f"/api/sessions/{model['id']}"
    again = create(kclient)
    assert again.status_code == 201 and again.get_json()["id"] == model["id"]
    assert [s["id"] for s in kclient.get("/api/sessions").get_json()] == [model["id"]]
    assert kclient.get(f"/api/sessions/{model['id']}").get_json()["kernel"]["id"] == model["kernel"]["id"]
    assert len(kclient.get("/api/kernels").get_json()) == 1


def test_patch_renames_and_switches_kernels(kclient):
    model = create(kclient).get_json()
    old_kernel = model["kernel"]["id"]
    renamed = kclient.patch(f"/api/sessions/{model['id']}", json={"path": "b.ipynb", "name": "b"}).get_json()
    assert renamed["path"] == "b.ipynb" and renamed["name"] == "b" and renamed["kernel"]["id"] == old_kernel
    other = kclient.post("/api/kernels").get_json()["id"]
    switched = kclient.patch(f"/api/sessions/{model['id']}", json={"kernel": {"id": other}}).get_json()
    assert switched["kernel"]["id"] == other
    assert kclient.get(f"/api/kernels/{old_kernel}").status_code == 404  # the old kernel was shut down
    same_name = kclient.patch(f"/api/sessions/{model['id']}", json={"kernel": {"name": "python3"}})
    assert same_name.get_json()["kernel"]["id"] == other
    missing = kclient.patch(f"/api/sessions/{model['id']}", json={"kernel": {"id": "nope"}})
    assert missing.status_code == 404


def test_delete_shuts_the_kernel_down(kclient):
    model = create(kclient).get_json()
    assert kclient.delete(f"/api/sessions/{model['id']}").status_code == 204
    assert kclient.get("/api/sessions").get_json() == []
    assert kclient.get(f"/api/kernels/{model['kernel']['id']}").status_code == 404
    assert kclient.delete(f"/api/sessions/{model['id']}").status_code == 404


def test_deleting_the_kernel_ends_its_session(kclient):
    model = create(kclient).get_json()
    kclient.delete(f"/api/kernels/{model['kernel']['id']}")
    assert kclient.get(f"/api/sessions/{model['id']}").status_code == 404


def test_session_on_an_existing_kernel(kclient):
    kernel_id = kclient.post("/api/kernels").get_json()["id"]
    model = kclient.post("/api/sessions", json={"path": "x.ipynb", "kernel": {"id": kernel_id}}).get_json()
    assert model["kernel"]["id"] == kernel_id and model["type"] == "notebook"


def test_bad_requests(kclient):
    unknown = create(kclient, path="c.ipynb", kernel={"name": "no-such-kernel"})
    assert unknown.status_code == 501 and "no-such-kernel" in unknown.get_json()["message"]
    assert kclient.post("/api/sessions", json={"type": "notebook"}).status_code == 400
    assert kclient.post("/api/sessions", json={"path": "d.ipynb", "kernel": "python3"}).status_code == 400
    missing_kernel = {"path": "d.ipynb", "kernel": {"id": "nope"}}
    assert kclient.post("/api/sessions", json=missing_kernel).status_code == 404
    assert kclient.get("/api/sessions/nope").status_code == 404
    assert kclient.patch("/api/sessions/nope", json={"name": "x"}).status_code == 404
    assert kclient.get("/api/sessions").get_json() == []
