"""What the front-ends call besides the Jupyter Server API: lab settings (JSON5 overrides),
translations, listings, workspaces, /api/config, and where that per-user state lives."""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path
from urllib.parse import quote

import json5
import pytest
from live import TOKEN

from nbflask.frontend.configsections import MAX_CONFIG_BYTES
from nbflask.frontend.settings import MAX_SETTINGS_BODY, MAX_SETTINGS_BYTES
from nbflask.frontend.workspaces import MAX_WORKSPACE_BYTES

THEMES = "@jupyterlab/apputils-extension:themes"
WIDGETS = "@jupyter-widgets/jupyterlab-manager:plugin"


def test_settings_list_every_schema_of_the_app_and_of_extensions(client):
    listing = client.get("/lab/api/settings")
    assert listing.status_code == 200 and listing.is_json
    settings = {entry["id"]: entry for entry in listing.json["settings"]}
    assert THEMES in settings and "@jupyter-notebook/tree-extension:widget" in settings
    assert WIDGETS in settings  # from ipywidgets' federated extension
    assert settings[THEMES]["schema"]["properties"]["theme"]["default"] == "JupyterLab Light"
    assert settings[THEMES] | {"schema": None} == {
        "id": THEMES, "schema": None, "version": settings[THEMES]["version"], "raw": "{}", "settings": {},
        "warning": None, "last_modified": None, "created": None,
    }
    ids = client.get("/lab/api/settings?ids_only=true").json["settings"]
    assert ids == [{"id": plugin_id} for plugin_id in sorted(settings)]


def test_a_json5_override_is_kept_verbatim_and_parsed(client, make_app):
    raw = '{\n  // chosen in the Settings Editor\n  theme: "JupyterLab Dark",\n}'
    assert client.put(f"/lab/api/settings/{THEMES}", json={"raw": raw}).status_code == 204
    model = client.get(f"/lab/api/settings/{THEMES}").json
    assert model["raw"] == raw and model["settings"] == {"theme": "JupyterLab Dark"}
    # Another app (another web worker, or after a restart) sees it.
    other = make_app().test_client()
    other.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    assert other.get(f"/lab/api/settings/{THEMES}").json["settings"] == {"theme": "JupyterLab Dark"}


@pytest.mark.parametrize(
    ("body", "words"),
    [({"raw": "{theme: "}, "not valid JSON5"), ({"raw": "[1]"}, "JSON5 object"),
     ({"raw": '{"theme": 5}'}, "do not fit its schema at theme"), ({"text": "{}"}, "'raw'"),
     ({"raw": "{theme: " + "[" * 3000 + "]" * 3000 + "}"}, "nested too deeply")],
)
def test_bad_settings_are_refused_and_lose_nothing(client, body, words):
    client.put(f"/lab/api/settings/{THEMES}", json={"raw": '{"theme": "JupyterLab Dark"}'})
    response = client.put(f"/lab/api/settings/{THEMES}", json=body)
    assert response.status_code == 400 and words in response.json["message"]
    assert set(response.json) == {"message", "reason"}
    assert client.get(f"/lab/api/settings/{THEMES}").json["settings"] == {"theme": "JupyterLab Dark"}


def test_a_settings_document_over_the_limit_is_413_and_loses_nothing(client):
    """JSON5 is parsed in pure Python (seconds a MiB): a settings document may be 256 KiB."""
    dark = '{"theme": "JupyterLab Dark"}\n// '
    at_limit = dark + "x" * (MAX_SETTINGS_BYTES - len(dark))
    assert client.put(f"/lab/api/settings/{THEMES}", json={"raw": at_limit}).status_code == 204
    for raw, words in ((at_limit + "x", f"the limit is {MAX_SETTINGS_BYTES}"),
                       ("// " + "x" * MAX_SETTINGS_BODY, f"the limit is {MAX_SETTINGS_BODY}")):
        response = client.put(f"/lab/api/settings/{THEMES}", json={"raw": raw})
        assert response.status_code == 413 and words in response.json["message"]
        assert response.json["reason"] == "too large"
    assert client.get(f"/lab/api/settings/{THEMES}").json["raw"] == at_limit


def test_settings_with_a_lone_surrogate_are_400_and_lose_nothing(client):
    """JSON may carry a lone surrogate (\\ud800), which no UTF-8 file can hold: it was a 500."""
    client.put(f"/lab/api/settings/{THEMES}", json={"raw": '{"theme": "JupyterLab Dark"}'})
    body = '{"raw": "{\\"theme\\": \\"\\ud800\\"}"}'
    response = client.put(f"/lab/api/settings/{THEMES}", data=body, content_type="application/json")
    assert response.status_code == 400 and "not valid Unicode" in response.json["message"]
    assert client.get(f"/lab/api/settings/{THEMES}").json["settings"] == {"theme": "JupyterLab Dark"}


@pytest.mark.parametrize(
    ("text", "words"),
    [('{"theme": "JupyterLab Dark"}\n// ' + "x" * MAX_SETTINGS_BYTES, f"more than the {MAX_SETTINGS_BYTES}"),
     ("{theme: " + "[" * 3000 + "]" * 3000 + "}", "nested too deeply")],
)
def test_a_stored_settings_document_that_cannot_be_parsed_is_a_warning(client, text, words):
    """One saved before the limit, or by hand, never costs a page load its parse nor fails
    it: the page gets no settings and a warning saying why; the file stays as it is."""
    folder = Path(os.environ["NBFLASK_DATA_DIR"]) / "frontend" / "settings"
    folder.mkdir(parents=True)
    stored = folder / quote(THEMES, safe="")
    stored.write_text(text, encoding="utf-8")
    listing = client.get("/lab/api/settings")
    assert listing.status_code == 200
    themes = next(entry for entry in listing.json["settings"] if entry["id"] == THEMES)
    for model in (themes, client.get(f"/lab/api/settings/{THEMES}").json):
        assert model["settings"] == {} and words in model["warning"]
        assert model["raw"] == text or json5.loads(model["raw"]) == {}
    assert stored.read_text(encoding="utf-8") == text


def test_unknown_plugin_is_404_json(client):
    for response in (client.get("/lab/api/settings/@nobody/x:y"),
                     client.put("/lab/api/settings/@nobody/x:y", json={"raw": "{}"})):
        assert response.status_code == 404 and "no settings schema" in response.json["message"]


def test_translations_offer_english(client):
    assert client.get("/lab/api/translations").json == {
        "data": {"en": {"displayName": "English", "nativeName": "English"}}, "message": ""}
    assert client.get("/lab/api/translations/en").json == {"data": {}, "message": ""}
    french = client.get("/lab/api/translations/fr_FR").json
    assert french["data"] == {} and "not installed" in french["message"]


def test_listings_are_empty(client):
    response = client.get("/lab/api/listings/@jupyterlab/extensionmanager-extension/listings.json")
    assert response.json == {"blocked_extensions_uris": [], "allowed_extensions_uris": [],
                             "blocked_extensions": [], "allowed_extensions": []}


def test_workspaces_are_saved_listed_and_deleted(client):
    assert client.get("/lab/api/workspaces/default").json == {"data": {}, "metadata": {"id": "default"}}
    layout = {"data": {"layout-restorer:data": {"main": {"current": "notebook:a.ipynb"}}},
              "metadata": {"id": "default"}}
    assert client.put("/lab/api/workspaces/default", json=layout).status_code == 204
    saved = client.get("/lab/api/workspaces/default").json
    assert saved["data"] == layout["data"] and saved["metadata"]["id"] == "default"
    assert saved["metadata"]["created"] and saved["metadata"]["last_modified"]
    listing = client.get("/lab/api/workspaces").json["workspaces"]
    assert listing["ids"] == ["default"] and listing["values"] == [saved]
    assert client.delete("/lab/api/workspaces/default").status_code == 204
    assert client.delete("/lab/api/workspaces/default").status_code == 404
    assert client.get("/lab/api/workspaces").json == {"workspaces": {"ids": [], "values": []}}


def test_a_workspace_must_name_itself(client):
    wrong = client.put("/lab/api/workspaces/mine", json={"data": {}, "metadata": {"id": "other"}})
    assert wrong.status_code == 400 and "does not match" in wrong.json["message"]
    assert client.put("/lab/api/workspaces/mine", json={"data": {}}).status_code == 400
    assert client.put("/lab/api/workspaces/mine", data="[1]").status_code == 400
    assert client.get("/lab/api/workspaces").json["workspaces"]["ids"] == []


def test_config_sections_merge_patches_and_persist(client):
    assert client.get("/api/config/notebook").json == {}
    first = client.patch("/api/config/notebook", json={"Notebook": {"a": 1, "b": 2}, "x": True})
    assert first.status_code == 200 and first.json == {"Notebook": {"a": 1, "b": 2}, "x": True}
    second = client.patch("/api/config/notebook", json={"Notebook": {"b": None, "c": 3}})
    assert second.json == {"Notebook": {"a": 1, "c": 3}, "x": True}
    assert client.get("/api/config/notebook").json == second.json
    assert client.put("/api/config/notebook", json={"y": 1}).status_code == 204
    assert client.get("/api/config/notebook").json == {"y": 1}
    assert client.get("/api/config/common").json == {}


def test_config_refuses_bad_bodies(client):
    assert client.patch("/api/config/notebook", data="[1]").status_code == 400
    assert client.patch("/api/config/notebook", data="{nope").status_code == 400
    assert client.get("/api/config/no.dots").status_code in (400, 404)


def test_config_sections_and_workspaces_are_bounded_and_lose_nothing(client):
    """Every page load reads them back, so neither grows without bound: not by one PUT, nor
    by PATCH after PATCH."""
    client.put("/api/config/notebook", json={"kept": 1})
    half = "x" * (MAX_CONFIG_BYTES // 2)
    assert client.patch("/api/config/notebook", json={"a": half}).status_code == 200
    grown = client.patch("/api/config/notebook", json={"b": half})
    assert grown.status_code == 413 and grown.json["reason"] == "too large"
    assert client.put("/api/config/notebook", json={"c": "x" * 3 * MAX_CONFIG_BYTES}).status_code == 413
    assert client.get("/api/config/notebook").json == {"kept": 1, "a": half}

    layout = {"data": {"layout-restorer:data": {}}, "metadata": {"id": "big"}}
    assert client.put("/lab/api/workspaces/big", json=layout).status_code == 204
    for size in (MAX_WORKSPACE_BYTES, 3 * MAX_WORKSPACE_BYTES):
        huge = {"data": {"x": "x" * size}, "metadata": {"id": "big"}}
        refused = client.put("/lab/api/workspaces/big", json=huge)
        assert refused.status_code == 413 and "the limit is" in refused.json["message"]
    assert client.get("/lab/api/workspaces/big").json["data"] == layout["data"]


def test_cookie_sessions_must_echo_the_xsrf_cookie(anonymous):
    """What JupyterLab does: log in by token link, then echo `_xsrf` on every unsafe call."""
    anonymous.get(f"/lab?token={TOKEN}")
    page = anonymous.get("/lab")
    xsrf = anonymous.get_cookie("_xsrf")
    assert page.status_code == 200 and xsrf is not None and not xsrf.http_only
    body = {"raw": '{"theme": "JupyterLab Dark"}'}
    refused = anonymous.put(f"/lab/api/settings/{THEMES}", json=body)
    assert refused.status_code == 403 and "XSRF" in refused.json["message"]
    done = anonymous.put(f"/lab/api/settings/{THEMES}", json=body, headers={"X-XSRFToken": xsrf.value})
    assert done.status_code == 204


def test_state_lives_in_the_data_folder_by_default(client):
    client.patch("/api/config/notebook", json={"a": 1})
    folder = Path(os.environ["NBFLASK_DATA_DIR"]) / "frontend" / "config"
    assert (folder / "notebook").read_text() == '{"a": 1}'
    assert oct((folder / "notebook").stat().st_mode & 0o777) == "0o600"


@pytest.mark.swift
def test_with_swift_every_host_sees_the_same_state(make_app, swift_options, tmp_path_factory, monkeypatch):
    """Two web hosts share one Swift container but not a disk: settings, workspaces and
    config chosen through one are what the other serves."""
    store = {"class": "swift", **swift_options, "timeout": 2, "retries": 1}
    first = make_app({"store": store}).test_client()
    monkeypatch.setenv("NBFLASK_DATA_DIR", str(tmp_path_factory.mktemp("other-host")))
    second = make_app({"store": store}).test_client()
    for client in (first, second):
        client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    dark = {"raw": '{"theme": "JupyterLab Dark"}'}
    assert first.put(f"/lab/api/settings/{THEMES}", json=dark).status_code == 204
    workspace = {"data": {"k": 1}, "metadata": {"id": "w"}}
    assert first.put("/lab/api/workspaces/w", json=workspace).status_code == 204
    assert first.patch("/api/config/notebook", json={"a": 1}).status_code == 200
    assert second.get(f"/lab/api/settings/{THEMES}").json["settings"] == {"theme": "JupyterLab Dark"}
    assert second.get("/lab/api/workspaces/w").json["data"] == {"k": 1}
    assert second.get("/api/config/notebook").json == {"a": 1}
    # The state folder is hidden from the contents API.
    names = [entry["name"] for entry in second.get("/api/contents").json["content"]]
    assert names == []
    assert second.get("/api/contents/.nbflask-state").status_code == 404


def test_without_nbconvert_no_formats_and_a_clear_answer(client, monkeypatch):
    """The `export` extra not installed: the export menu is empty and an export says why."""
    monkeypatch.setitem(sys.modules, "nbconvert", None)  # `import nbconvert` now fails
    client.put("/api/contents/a.ipynb", json={"type": "notebook"})
    assert client.get("/api/nbconvert").json == {}
    response = client.get("/nbconvert/html/a.ipynb")
    assert response.status_code == 501 and response.is_json
    assert "pip install 'nbflask[export]'" in response.json["message"]


def test_big_json_answers_are_gzipped_when_offered(client):
    plain = client.get("/lab/api/settings")
    packed = client.get("/lab/api/settings", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.headers["Vary"]
    assert json.loads(gzip.decompress(packed.data)) == plain.json
    assert len(packed.data) < len(plain.data) / 4
    small = client.get("/lab/api/translations", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers  # not worth it under 1 KiB
    client.put("/api/contents/big.txt", json={"type": "file", "format": "text", "content": "x" * 5000})
    versioned = client.get("/api/contents/big.txt", headers={"Accept-Encoding": "gzip"})
    assert "ETag" in versioned.headers and "Content-Encoding" not in versioned.headers


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_config_refuses_numbers_json_does_not_have_and_keeps_what_was_saved(client, number):
    """Python reads NaN; saved, it came back as a body no JSON parser (the page's) accepts."""
    assert client.put("/api/config/notebook", json={"kept": 1}).status_code == 204
    for method in (client.put, client.patch):
        refused = method("/api/config/notebook", data=f'{{"limit": {number}}}',
                         content_type="application/json")
        assert refused.status_code == 400 and "NaN and Infinity" in refused.json["message"]
        assert refused.json["reason"] == "bad json"
    saved = client.get("/api/config/notebook")
    assert json.loads(saved.data, parse_constant=pytest.fail) == {"kept": 1}


@pytest.mark.parametrize("name", [".", "..", "..."])
def test_workspaces_named_with_dots_are_saved_listed_and_deleted_like_any_other(client, name):
    """As JupyterLab's server does: a name is a name, never a folder of the state."""
    url = f"/lab/api/workspaces/{name}"
    layout = {"data": {"layout": name}, "metadata": {"id": name}}
    assert client.put(url, json=layout).status_code == 204
    assert client.get(url).json["data"] == {"layout": name}
    assert client.get("/lab/api/workspaces").json["workspaces"]["ids"] == [name]
    assert client.delete(url).status_code == 204
    assert client.get("/lab/api/workspaces").json["workspaces"]["ids"] == []


def test_a_workspace_name_too_long_to_save_is_a_400_and_reads_as_new(client):
    name = "w" * 300
    url = f"/lab/api/workspaces/{name}"
    refused = client.put(url, json={"data": {}, "metadata": {"id": name}})
    assert refused.status_code == 400 and "too long" in refused.json["message"]
    assert refused.json["reason"] == "Name Too Long"
    assert client.get(url).json == {"data": {}, "metadata": {"id": name}}
    assert client.delete(url).status_code == 404
    fits = "w" * 200
    saved = client.put(f"/lab/api/workspaces/{fits}", json={"data": {}, "metadata": {"id": fits}})
    assert saved.status_code == 204
