"""`/api/terminals` as Jupyter Server answers it, with real shells behind a real kernel host."""

from __future__ import annotations

import json
import re
import time

import pytest
from kernelapp import close_app, kernel_client, wait_gone

from nbflask.config import ConfigError, load_settings

WS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
CONFIG = re.compile(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', re.S)


@pytest.fixture
def tclient(make_app):
    with kernel_client(make_app) as client:
        yield client


def test_create_list_get_delete_with_jupyters_models_and_codes(tclient):
    assert tclient.get("/api/terminals").get_json() == []
    created = tclient.post("/api/terminals")
    assert created.status_code == 200  # Jupyter answers 200, not 201
    model = created.get_json()
    assert set(model) == {"name", "last_activity"} and model["name"] == "1"
    assert model["last_activity"].endswith("Z")
    assert tclient.post("/api/terminals", json={}).get_json()["name"] == "2"
    assert [t["name"] for t in tclient.get("/api/terminals").get_json()] == ["1", "2"]
    assert tclient.get("/api/terminals/1").get_json()["name"] == "1"
    deleted = tclient.delete("/api/terminals/1")
    assert deleted.status_code == 204 and deleted.data == b""
    assert [t["name"] for t in tclient.get("/api/terminals").get_json()] == ["2"]
    assert tclient.post("/api/terminals").get_json()["name"] == "1"  # the smallest free number


def test_unknown_terminals_are_404_with_jupyters_message(tclient):
    for method in ("get", "delete"):
        missing = getattr(tclient, method)("/api/terminals/nope")
        assert missing.status_code == 404
        assert missing.get_json() == {"message": "Terminal not found: nope", "reason": None}
    assert tclient.get("/terminals/websocket/nope", headers=WS).status_code == 404


def test_a_named_terminal_is_created_once_and_bad_names_are_refused(tclient):
    first = tclient.post("/api/terminals", json={"name": "work"}).get_json()
    again = tclient.post("/api/terminals", json={"name": "work"})
    assert again.status_code == 200 and again.get_json()["name"] == first["name"] == "work"
    assert len(tclient.get("/api/terminals").get_json()) == 1
    for bad in ("a/b", "no spaces", "", "x" * 65):
        refused = tclient.post("/api/terminals", json={"name": bad})
        assert refused.status_code == 400, bad
        assert "Invalid terminal name" in refused.get_json()["message"]
    assert tclient.post("/api/terminals", json={"name": 7}).status_code == 400
    assert tclient.post("/api/terminals", data="[", content_type="application/json").status_code == 400


def test_shutting_the_server_down_kills_its_terminals(make_app):
    app = make_app()
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "token " + app.extensions["nbflask"].token
    client.post("/api/terminals")
    pids = shell_pids(app.extensions["nbflask"].host.pid())
    assert len(pids) == 1
    close_app(app)
    assert wait_gone(pids[0])


def shell_pids(host_pid: int) -> list[int]:
    """The host's children that are terminal shells (not kernels)."""
    import psutil

    return [child.pid for child in psutil.Process(host_pid).children()
            if "ipykernel" not in " ".join(child.cmdline())]


def test_inactive_terminals_are_culled(make_app):
    with kernel_client(make_app, {"terminals": {"cull_inactive_timeout": 1, "cull_interval": 1}}) as client:
        client.post("/api/terminals")
        deadline = time.monotonic() + 30
        while client.get("/api/terminals/1").status_code == 200:
            assert time.monotonic() < deadline, "the idle terminal was never culled"
            time.sleep(0.2)
        assert client.get("/api/terminals").get_json() == []


def test_with_terminals_disabled_the_routes_are_gone(make_app):
    with kernel_client(make_app, {"terminals": {"enabled": False}}) as client:
        assert client.get("/api/terminals").status_code == 404
        assert client.post("/api/terminals").status_code == 404
        assert client.get("/api/terminals/1").status_code == 404
        assert client.get("/terminals/websocket/1", headers=WS).status_code == 404
        assert client.get("/terminals/1").status_code == 404
        for page in ("/lab", "/tree"):
            assert page_config(client.get(page))["terminalsAvailable"] is False


def test_pages_say_terminals_are_available_and_notebook_has_a_terminal_page(tclient):
    for page in ("/lab", "/tree"):
        assert page_config(tclient.get(page))["terminalsAvailable"] is True
    config = page_config(tclient.get("/terminals/1"))
    assert config["notebookPage"] == "terminals" and config["appNamespace"] == "notebook"


def page_config(response) -> dict:
    assert response.status_code == 200, response.data[:300]
    return json.loads(CONFIG.search(response.get_data(as_text=True)).group(1))


def test_no_terminal_for_a_logged_out_page_a_foreign_origin_or_host(app, anonymous, client):
    assert anonymous.get("/api/terminals").status_code == 403
    assert anonymous.post("/api/terminals").status_code == 403
    refused = anonymous.get("/terminals/websocket/1", headers=WS)
    assert refused.status_code == 403  # not a login redirect: a websocket cannot follow one
    foreign = client.get("/terminals/websocket/1", headers={**WS, "Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "Cross-origin websocket" in foreign.get_json()["message"]
    rebound = client.get("/terminals/websocket/1", headers={**WS, "Host": "evil.example"})
    assert rebound.status_code == 403
    assert anonymous.get("/terminals/1").status_code == 302  # the page itself asks to log in


def test_a_plain_request_to_the_websocket_is_400(tclient):
    tclient.post("/api/terminals")
    plain = tclient.get("/terminals/websocket/1")
    assert plain.status_code == 400


def test_terminal_settings_are_checked(tmp_path):
    terminals = {"shell_command": ["bash", "-l"], "env": {"EDITOR": "nano", "N": 1},
                 "root_dir": str(tmp_path)}
    settings = load_settings({"terminals": terminals})
    assert settings.terminals.shell_command == ["bash", "-l"]
    assert settings.terminals.env == {"EDITOR": "nano", "N": "1"}
    with pytest.raises(ConfigError, match="terminals.env: expected a mapping of strings to strings"):
        load_settings({"terminals": {"env": ["EDITOR=nano"]}})
    with pytest.raises(ConfigError, match="terminals.root_dir: expected a folder"):
        load_settings({"terminals": {"root_dir": str(tmp_path / "missing")}})
    with pytest.raises(ConfigError, match="terminals.scrollback_bytes"):
        load_settings({"terminals": {"scrollback_bytes": 0}})
    with pytest.raises(ConfigError, match="terminals.cull_"):
        load_settings({"terminals": {"cull_interval": 0}})
    with pytest.raises(ConfigError, match="unknown key 'terminals.shell'"):
        load_settings({"terminals": {"shell": "bash"}})


def test_terminals_created_at_once_get_names_of_their_own(tclient):
    """JupyterLab restores every terminal of a workspace at once, each a POST."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        names = list(pool.map(lambda _: tclient.post("/api/terminals").get_json()["name"], range(4)))
    assert sorted(names) == ["1", "2", "3", "4"]
    assert sorted(t["name"] for t in tclient.get("/api/terminals").get_json()) == ["1", "2", "3", "4"]
