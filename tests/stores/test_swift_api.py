"""The contents API when Swift fails: 503/504 JSON naming the store, nothing lost, saves resume.

A client whose save fails keeps its notebook (the API answers an error, never a success it did
not get), the stored version stays the previous one, and the same save goes through once Swift
is back, with its If-Match still valid since nothing changed meanwhile.
"""

from __future__ import annotations

import json
import signal
from typing import Any

import nbformat
import pytest
from conftest import TOKEN
from flask.testing import FlaskClient
from live import start_gunicorn, start_nbflask
from swift_fixtures import SwiftServer

pytestmark = pytest.mark.slow


def notebook(source: str) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return {"type": "notebook", "format": "json", "content": json.loads(nbformat.writes(nb))}


def sources(model: dict[str, Any]) -> list[str]:
    return [cell["source"] for cell in model["content"]["cells"]]


def assert_store_error(response: Any, status: int, *fragments: str) -> None:
    """A JSON error with the status, naming the Swift store and what failed."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"message", "reason"}
    assert "swift store" in body["message"]
    for fragment in fragments:
        assert fragment in body["message"]


@pytest.fixture
def api(make_app: Any, swift_options: dict[str, Any]) -> FlaskClient:
    app = make_app({"store": {"class": "swift", **swift_options, "timeout": 1, "retries": 0}})
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    return client


def test_save_while_swift_is_down_is_503_and_the_same_save_succeeds_later(
    api: FlaskClient, swift_server: SwiftServer
) -> None:
    assert api.put("/api/contents/nb.ipynb", json=notebook("v1")).status_code == 201
    etag = api.get("/api/contents/nb.ipynb").headers["ETag"]
    swift_server.kill("proxy")
    unsaved = notebook("v2, not saved yet")
    failed = api.put("/api/contents/nb.ipynb", json=unsaved, headers={"If-Match": etag})
    assert_store_error(failed, 503, "cannot reach Swift")
    assert_store_error(api.get("/api/contents"), 503)
    assert_store_error(api.get("/api/contents/nb.ipynb"), 503)
    swift_server.heal()
    assert sources(api.get("/api/contents/nb.ipynb").get_json()) == ["v1"]
    retried = api.put("/api/contents/nb.ipynb", json=unsaved, headers={"If-Match": etag})
    assert retried.status_code == 200, retried.get_data(as_text=True)
    assert sources(api.get("/api/contents/nb.ipynb").get_json()) == ["v2, not saved yet"]


def test_a_hung_swift_is_504_json_within_the_timeout(api: FlaskClient, swift_server: SwiftServer) -> None:
    assert api.put("/api/contents/nb.ipynb", json=notebook("v1")).status_code == 201
    swift_server.signal("proxy", signal.SIGSTOP)
    assert_store_error(api.put("/api/contents/nb.ipynb", json=notebook("v2")), 504, "no answer within 1 s")
    assert_store_error(api.post("/api/contents/nb.ipynb/checkpoints"), 504)
    swift_server.heal()
    assert sources(api.get("/api/contents/nb.ipynb").get_json()) == ["v1"]


def test_swift_answering_5xx_is_503_json_with_swift_s_answer(
    api: FlaskClient, swift_server: SwiftServer
) -> None:
    assert api.put("/api/contents/nb.ipynb", json=notebook("v1")).status_code == 201
    assert api.post("/api/contents/nb.ipynb/checkpoints").status_code == 201
    checkpoints = api.get("/api/contents/nb.ipynb/checkpoints").get_json()
    swift_server.kill("object")
    assert_store_error(api.get("/api/contents/nb.ipynb"), 503, "Swift answered 503")
    assert_store_error(api.put("/api/contents/nb.ipynb", json=notebook("v2")), 503, "Swift answered 503")
    assert_store_error(api.patch("/api/contents/nb.ipynb", json={"path": "moved.ipynb"}), 503)
    swift_server.heal()
    assert sources(api.get("/api/contents/nb.ipynb").get_json()) == ["v1"]
    assert api.get("/api/contents/nb.ipynb/checkpoints").get_json() == checkpoints
    assert api.put("/api/contents/nb.ipynb", json=notebook("v2")).status_code == 200


def test_a_live_gevent_server_reports_swift_down_and_recovers(
    tmp_path: Any, swift_server: SwiftServer, swift_options: dict[str, Any]
) -> None:
    """`nbflask run` (gevent-patched sockets under swiftclient) against the real Swift."""
    store = {"class": "swift", **swift_options, "timeout": 2, "retries": 1}
    with start_nbflask(tmp_path, {"store": store}) as server:
        client = server.session()
        url = server.url + "api/contents/nb.ipynb"
        assert client.put(url, json=notebook("v1"), timeout=30).status_code == 201
        swift_server.kill("proxy")
        failed = client.put(url, json=notebook("v2"), timeout=30)
        assert failed.status_code == 503
        assert "swift store" in failed.json()["message"]
        swift_server.heal()
        assert sources(client.get(url, timeout=30).json()) == ["v1"]
        assert client.put(url, json=notebook("v2"), timeout=30).status_code == 200
        assert sources(client.get(url, timeout=30).json()) == ["v2"]
        assert "Traceback" not in server.log()
        assert f"serving notebooks from Swift container '{swift_options['container']}' via" in server.log()


def test_two_web_hosts_on_one_container_serve_the_same_notebooks(
    tmp_path: Any, swift_options: dict[str, Any]
) -> None:
    """A multi-host deployment: two servers, one YAML store section, one container.

    Host 1 is `nbflask run`, host 2 gunicorn with two gevent workers, as an operator runs it.
    """
    store = {"class": "swift", **swift_options, "prefix": "team-a"}
    (tmp_path / "host1").mkdir()
    (tmp_path / "host2").mkdir()
    with (
        start_nbflask(tmp_path / "host1", {"store": store}) as host1,
        start_gunicorn(tmp_path / "host2", {"store": store}, workers=2) as host2,
    ):
        one, two = host1.session(), host2.session()
        assert one.put(host1.url + "api/contents/shared", json={"type": "directory"}, timeout=30).ok
        url1, url2 = host1.url + "api/contents/shared/nb.ipynb", host2.url + "api/contents/shared/nb.ipynb"
        assert one.put(url1, json=notebook("from host 1"), timeout=30).status_code == 201
        seen_by_two = two.get(url2, timeout=30)
        assert sources(seen_by_two.json()) == ["from host 1"]
        assert one.put(url1, json=notebook("host 1 again"), timeout=30).status_code == 200
        stale = two.put(
            url2, json=notebook("host 2"), headers={"If-Match": seen_by_two.headers["ETag"]}, timeout=30
        )
        assert stale.status_code == 412, stale.text
        assert sources(two.get(url2, timeout=30).json()) == ["host 1 again"]
        names = [
            child["name"]
            for child in two.get(host2.url + "api/contents/shared", timeout=30).json()["content"]
        ]
        assert names == ["nb.ipynb"]
