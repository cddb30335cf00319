"""`/api/sessions`: create (idempotent per path), get, list, PATCH, DELETE."""

from __future__ import annotations

import pytest
from kernelapp import kernel_client

pytestmark = pytest.mark.kernel_transports


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
    assert model["kernel"]["name"] == "python3" and model["kernel"]["execution_state"] in ("starting", "idle")
    assert first.headers["Location"] == f"/api/sessions/{model['id']}"
    again = create(kclient)
    assert again.status_code == 201 and again.get_json()["id"] == model["id"]
    assert [s["id"] for s in kclient.get("/api/sessions").get_json()] == [model["id"]]
    assert kclient.get(f"/api/sessions/{model['id']}").get_json()["kernel"]["id"] == model["kernel"]["id"]
    assert len(kclient.get("/api/kernels").get_json()) == 1


def kernel_ids(client):
    return {kernel["id"] for kernel in client.get("/api/kernels").get_json()}


def test_patch_renames_and_switches_kernels(kclient):
    model = create(kclient).get_json()
    old_kernel = model["kernel"]["id"]
    renamed = kclient.patch(f"/api/sessions/{model['id']}", json={"path": "b.ipynb", "name": "b"}).get_json()
    assert renamed["path"] == "b.ipynb" and renamed["name"] == "b" and renamed["kernel"]["id"] == old_kernel
    other = kclient.post("/api/kernels").get_json()["id"]
    switched = kclient.patch(f"/api/sessions/{model['id']}", json={"kernel": {"id": other}}).get_json()
    assert switched["kernel"]["id"] == other
    assert kclient.get(f"/api/kernels/{old_kernel}").status_code == 404  # the old kernel was shut down
    missing = kclient.patch(f"/api/sessions/{model['id']}", json={"kernel": {"id": "nope"}})
    assert missing.status_code == 400 and missing.get_json()["message"] == "No such kernel: nope"


def test_patch_with_a_kernel_name_starts_a_new_kernel_and_shuts_the_old_one_down(kclient):
    model = create(kclient).get_json()
    old_kernel = model["kernel"]["id"]
    patched = kclient.patch(f"/api/sessions/{model['id']}", json={"kernel": {"name": "python3"}})
    assert patched.status_code == 200
    new_kernel = patched.get_json()["kernel"]
    assert new_kernel["id"] != old_kernel and new_kernel["name"] == "python3"  # even the same spec
    assert kernel_ids(kclient) == {new_kernel["id"]}
    assert kclient.get(f"/api/sessions/{model['id']}").get_json()["kernel"]["id"] == new_kernel["id"]


def test_patch_keeps_the_old_kernel_while_another_session_uses_it(kclient):
    first = create(kclient).get_json()
    shared = first["kernel"]["id"]
    second = create(kclient, path="other.ipynb", kernel={"id": shared}).get_json()
    assert second["kernel"]["id"] == shared
    moved = kclient.patch(f"/api/sessions/{first['id']}", json={"kernel": {"name": "python3"}}).get_json()
    assert kernel_ids(kclient) == {shared, moved["kernel"]["id"]}
    assert kclient.get(f"/api/sessions/{second['id']}").get_json()["kernel"]["id"] == shared


def test_a_patch_whose_kernel_cannot_start_changes_nothing(kclient):
    model = create(kclient).get_json()
    failed = kclient.patch(f"/api/sessions/{model['id']}",
                           json={"path": "moved.ipynb", "kernel": {"name": "no-such-kernel"}})
    assert failed.status_code == 501 and "no-such-kernel" in failed.get_json()["message"]
    after = kclient.get(f"/api/sessions/{model['id']}").get_json()
    assert after["path"] == "work/a.ipynb" and after["kernel"]["id"] == model["kernel"]["id"]
    assert kernel_ids(kclient) == {model["kernel"]["id"]}


def test_patch_accepts_the_deprecated_notebook_body(kclient):
    model = create(kclient, type="file").get_json()
    patched = kclient.patch(f"/api/sessions/{model['id']}",
                            json={"notebook": {"path": "renamed.ipynb"}, "path": "ignored.ipynb"})
    assert patched.status_code == 200
    body = patched.get_json()
    assert body["path"] == "renamed.ipynb" and body["notebook"]["path"] == "renamed.ipynb"
    assert body["type"] == "notebook" and body["kernel"]["id"] == model["kernel"]["id"]
    unchanged = kclient.patch(f"/api/sessions/{model['id']}", json={"notebook": {}})
    assert unchanged.status_code == 200 and unchanged.get_json()["path"] == "renamed.ipynb"
    for bad in ({"notebook": "x.ipynb"}, {"notebook": {"path": 3}}, {"notebook": ["x.ipynb"]}):
        response = kclient.patch(f"/api/sessions/{model['id']}", json=bad)
        assert response.status_code == 400 and "must be" in response.get_json()["message"], bad
    empty = kclient.patch(f"/api/sessions/{model['id']}", data="")
    assert empty.status_code == 400 and empty.get_json()["message"] == "No JSON data provided"
    assert kclient.get(f"/api/sessions/{model['id']}").get_json()["path"] == "renamed.ipynb"


def test_create_accepts_the_deprecated_notebook_body(kclient):
    response = kclient.post("/api/sessions", json={"notebook": {"path": "old.ipynb"}, "type": "console",
                                                   "kernel": {"name": "python3"}})
    assert response.status_code == 201
    assert response.get_json()["path"] == "old.ipynb" and response.get_json()["type"] == "notebook"


def test_a_session_naming_a_kernel_id_that_does_not_exist_yet_starts_it(kclient):
    kernel_id = "5d3c1e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
    first = create(kclient, kernel={"id": kernel_id, "name": "python3"})
    assert first.status_code == 201 and first.get_json()["kernel"]["id"] == kernel_id
    second = create(kclient, path="b.ipynb", kernel={"id": kernel_id}).get_json()
    assert second["kernel"]["id"] == kernel_id and kernel_ids(kclient) == {kernel_id}
    assert kclient.delete(f"/api/sessions/{first.get_json()['id']}").status_code == 204
    assert kernel_ids(kclient) == {kernel_id}  # the other session still uses it
    default = create(kclient, path="c.ipynb", kernel={"id": "6d3c1e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6"})
    assert default.get_json()["kernel"]["name"] == "python3"
    unknown = create(kclient, path="d.ipynb", kernel={"id": "7d3c1e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
                                                      "name": "no-such-kernel"})
    assert unknown.status_code == 501


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
    bad_kernel_id = {"path": "d.ipynb", "kernel": {"id": "../nope"}}
    assert kclient.post("/api/sessions", json=bad_kernel_id).status_code == 400
    assert kclient.get("/api/sessions/nope").status_code == 404
    assert kclient.patch("/api/sessions/nope", json={"name": "x"}).status_code == 404
    assert kclient.get("/api/sessions").get_json() == []
