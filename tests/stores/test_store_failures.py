"""A store that fails answers the same on every route: Jupyter's JSON error with the status
of the failure (503 for a backend down, 507 for no room), one log line, never a 500 with a
traceback. The front-ends' per-user state lives in a store that shares state (Swift), so a
JupyterLab settings or workspace save fails as a contents save does."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from disks import fill_up_to, small_disk
from flask import Flask
from flask.testing import FlaskClient
from live import TOKEN

from nbflask.stores.base import (
    AlreadyExists,
    BadContent,
    Conflict,
    InvalidPath,
    NotEmpty,
    NotFound,
    PermissionDenied,
    StoreError,
    StoreFull,
    TimedOut,
    Unavailable,
)
from nbflask.stores.memory import MemoryStore

THEMES = "@jupyterlab/apputils-extension:themes"
BIG = "x" * 200  # more than the full store below has room for


class UnpluggedStore(MemoryStore):
    """The memory store shared as Swift is (the front-ends keep their state in it), whose
    backend can be unplugged: every call then fails as a Swift store's whose server is down."""

    name = "unplugged"
    shares_state = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.down = False


def _unpluggable(name: str) -> Any:
    def method(self: UnpluggedStore, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise Unavailable(f"unplugged store: {name} failed: cannot reach the backend")
        return getattr(MemoryStore, name)(self, *args, **kwargs)

    return method


for _name in ("stat", "list", "read", "write", "save", "stage_chunk", "commit_upload", "mkdir", "delete",
              "rename", "create_checkpoint", "list_checkpoints", "restore_checkpoint", "delete_checkpoint"):
    setattr(UnpluggedStore, _name, _unpluggable(_name))


def authenticated(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    return client


@pytest.fixture
def unplugged(make_app) -> tuple[FlaskClient, UnpluggedStore]:
    app = make_app({"store": {"class": f"{__name__}:UnpluggedStore"}})
    return authenticated(app), app.extensions["nbflask"].store


@pytest.fixture
def full(make_app) -> FlaskClient:
    """A store shared as Swift is, with room for a directory or two and little else."""
    return authenticated(make_app({"store": {"class": f"{__name__}:UnpluggedStore", "max_bytes": 64}}))


def assert_clean_error(response, status: int, caplog: pytest.LogCaptureFixture) -> None:
    """Jupyter's JSON error with `status`, logged as one line without a traceback."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"message", "reason"} and body["message"]
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"


SAVES = {
    "contents": ("PUT", "/api/contents/a.txt", {"type": "file", "format": "text", "content": BIG}),
    "lab settings": ("PUT", f"/lab/api/settings/{THEMES}", {"raw": f'{{"theme": "light"}} // {BIG}'}),
    "workspace": ("PUT", "/lab/api/workspaces/w", {"data": {"k": BIG}, "metadata": {"id": "w"}}),
    "config section": ("PATCH", "/api/config/notebook", {"a": BIG}),
}


@pytest.mark.parametrize("save", SAVES.values(), ids=SAVES.keys())
def test_a_save_while_the_store_is_down_is_a_clean_503_on_every_route(unplugged, caplog, save):
    client, store = unplugged
    method, url, body = save
    store.down = True
    with caplog.at_level(logging.WARNING):
        response = client.open(url, method=method, json=body)
    assert_clean_error(response, 503, caplog)
    assert "cannot reach the backend" in response.get_json()["message"]
    store.down = False
    assert client.open(url, method=method, json=body).status_code in (200, 201, 204)


@pytest.mark.parametrize("save", SAVES.values(), ids=SAVES.keys())
def test_a_save_the_store_has_no_room_for_is_a_clean_507_on_every_route(full, caplog, save):
    method, url, body = save
    with caplog.at_level(logging.WARNING):
        response = full.open(url, method=method, json=body)
    assert_clean_error(response, 507, caplog)


READS = {
    "contents": "/api/contents",
    "lab settings": f"/lab/api/settings/{THEMES}",
    "workspaces": "/lab/api/workspaces",
    "config section": "/api/config/notebook",
    "download": "/files/a.txt",
}


@pytest.mark.parametrize("url", READS.values(), ids=READS.keys())
def test_a_read_while_the_store_is_down_is_a_clean_503_on_every_route(unplugged, caplog, url):
    client, store = unplugged
    store.down = True
    with caplog.at_level(logging.WARNING):
        assert_clean_error(client.get(url), 503, caplog)


def test_a_page_that_looks_in_the_store_while_it_is_down_is_a_503_page(unplugged):
    client, store = unplugged
    store.down = True
    response = client.get("/tree/folder")
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert "cannot reach the backend" in response.get_data(as_text=True)


class QuotaExceeded(StoreError):
    """A store's own kind of failure, none of the contract's."""


class Overdrawn(Unavailable):
    """A store's own refinement of a failure the contract names."""


STATUSES = [(NotFound, 404), (InvalidPath, 400), (BadContent, 400), (NotEmpty, 400), (AlreadyExists, 409),
            (Conflict, 412), (PermissionDenied, 403), (Unavailable, 503), (TimedOut, 504), (StoreFull, 507),
            (QuotaExceeded, 500), (Overdrawn, 503)]


@pytest.mark.parametrize(("error", "status"), STATUSES, ids=[error.__name__ for error, _ in STATUSES])
def test_each_kind_of_store_failure_answers_with_its_status_on_any_route(make_app, caplog, error, status):
    """Raised where no blueprint expects it; a store's own class answers as the class it refines."""
    app = make_app()

    @app.get("/api/anywhere")
    def anywhere() -> None:
        raise error("the store says no", "its reason")

    with caplog.at_level(logging.WARNING):
        response = authenticated(app).get("/api/anywhere")
    assert_clean_error(response, status, caplog)
    assert response.get_json() == {"message": "the store says no", "reason": "its reason"}


@pytest.fixture
def full_data_folder(make_app, tmp_path, monkeypatch, request) -> FlaskClient:
    """The file store (front-end state in the per-user data folder), that folder on a small
    tmpfs with no room left: as real as a full home folder gets (mounting one needs root)."""
    disk = small_disk(tmp_path / "data", "256k", request)
    monkeypatch.setenv("NBFLASK_DATA_DIR", str(disk))
    test_client = make_app().test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    for kind in ("frontend/settings", "frontend/workspaces", "frontend/config"):
        (disk / kind).mkdir(parents=True, exist_ok=True)
    fill_up_to(disk, 0)
    return test_client


FRONTEND_SAVES = {name: save for name, save in SAVES.items() if name != "contents"}


@pytest.mark.parametrize("save", FRONTEND_SAVES.values(), ids=FRONTEND_SAVES.keys())
def test_a_front_end_save_into_a_full_data_folder_is_a_clean_507(full_data_folder, caplog, save):
    method, url, body = save
    with caplog.at_level(logging.WARNING):
        response = full_data_folder.open(url, method=method, json=body)
    assert_clean_error(response, 507, caplog)
