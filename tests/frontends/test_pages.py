"""The pages of Notebook 7 and JupyterLab as nbflask renders them: routes, redirects, the
page config each front-end reads, the scripts taken from the shipped pages, and prefixes."""

from __future__ import annotations

import json
import re

import pytest
from live import TOKEN

from nbflask.frontend import assets

CONFIG = re.compile(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', re.S)
SCRIPTS = re.compile(r'<script defer src="([^"]+)"></script>')


def page_config(response) -> dict:
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/html"
    return json.loads(CONFIG.search(response.get_data(as_text=True)).group(1))


@pytest.fixture
def files(client):
    client.put("/api/contents/sub", json={"type": "directory"})
    client.put("/api/contents/sub/a.ipynb", json={"type": "notebook"})
    client.put("/api/contents/notes.txt", json={"type": "file", "format": "text", "content": "hi"})
    return client


def test_root_redirects_to_the_default_page(client, make_app):
    assert client.get("/").headers["Location"] == "/tree"
    lab_first = make_app({"ui": {"default_url": "/lab"}}).test_client()
    assert lab_first.get(f"/?token={TOKEN}").headers["Location"] == "/"
    assert lab_first.get("/").headers["Location"] == "/lab"


@pytest.mark.parametrize(
    ("url", "front", "extra"),
    [
        ("/lab", "lab", {"treePath": "", "workspace": "default", "mode": "multiple-document"}),
        ("/lab/tree", "lab", {"treePath": ""}),
        ("/lab/tree/sub/a.ipynb", "lab", {"treePath": "sub/a.ipynb"}),
        ("/lab/workspaces/mine", "lab", {"workspace": "mine", "treePath": ""}),
        ("/lab/workspaces/mine/tree/sub", "lab", {"workspace": "mine", "treePath": "sub"}),
        ("/doc/tree/sub/a.ipynb", "lab", {"treePath": "sub/a.ipynb", "mode": "single-document"}),
        ("/tree", "notebook", {"notebookPage": "tree", "treePath": ""}),
        ("/consoles", "notebook", {"notebookPage": "consoles"}),
        ("/tree/sub", "notebook", {"notebookPage": "tree", "treePath": "sub"}),
        ("/notebooks/sub/a.ipynb", "notebook", {"notebookPage": "notebooks"}),
        ("/edit/notes.txt", "notebook", {"notebookPage": "edit"}),
        ("/consoles/sub/a.ipynb", "notebook", {"notebookPage": "consoles"}),
    ],
)
def test_every_page_carries_the_page_config_its_front_end_reads(files, url, front, extra):
    config = page_config(files.get(url))
    frontend = assets.load().lab if front == "lab" else assets.load().notebook
    assert config["appNamespace"] == front
    assert config["appVersion"] == frontend.version
    assert config["baseUrl"] == "/" and config["wsUrl"] == ""
    assert config["fullStaticUrl"] == f"/static/{front}"
    assert config["settingsUrl"] == "/lab/api/settings" and config["fullSettingsUrl"] == "/lab/api/settings"
    for key in ("themesUrl", "listingsUrl", "workspacesApiUrl", "translationsApiUrl", "labextensionsUrl"):
        assert config[key].startswith("/lab/") and config["full" + key[0].upper() + key[1:]] == config[key]
    assert config["terminalsAvailable"] is True  # terminals.enabled, as in Jupyter
    assert config["exposeAppInBrowser"] is False
    assert config["token"] == ""  # same-origin pages authenticate by cookie; no token in the HTML
    assert isinstance(config["federated_extensions"], list)
    for key, value in extra.items():
        assert config[key] == value, key


def test_scripts_come_from_the_shipped_page_not_from_the_folder(client):
    """The folder holds many main-like bundles over time; only the one the wheel's own page
    names may load (a stale one would run old code against this server)."""
    for url, frontend in (("/lab", assets.load().lab), ("/tree", assets.load().notebook)):
        html = client.get(url).get_data(as_text=True)
        shipped = frontend.static_dir / ("index.html" if frontend.name == "lab" else "../templates/tree.html")
        expected = re.findall(r"fullStaticUrl\}\}/([^\"]+)\"", shipped.read_text())
        assert SCRIPTS.findall(html) == [f"/static/{frontend.name}/{name}" for name in expected]
        for src in SCRIPTS.findall(html):
            assert client.get(src).status_code == 200


def test_page_scripts_reads_the_script_tags_of_a_shipped_page():
    template = (
        '<script src="https://cdn.example/x.js"></script>'
        '<script defer="defer" src="{{page_config.fullStaticUrl}}/main.abc123.js?v=abc123"></script>'
        '<script defer src="{{ page_config.fullStaticUrl }}/extra.js"></script>'
    )
    assert assets.page_scripts(template) == ("main.abc123.js?v=abc123", "extra.js")


def test_trailing_slashes_go_to_the_page_without_as_in_jupyter(client):
    for url in ("/lab/", "/tree/", "/lab/tree/", "/tree/sub/", "/consoles/"):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"] == url.rstrip("/")


def test_tree_opens_files_where_they_belong_as_notebook_7_does(files):
    assert files.get("/tree/sub/a.ipynb").headers["Location"] == "/notebooks/sub/a.ipynb"
    assert files.get("/tree/notes.txt").headers["Location"] == "/files/notes.txt"
    assert files.get("/notebooks/sub").headers["Location"] == "/tree/sub"
    missing = files.get("/tree/nowhere")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    html = missing.get_data(as_text=True)
    assert "No such directory: nowhere" in html and 'href="/static/style.css"' in html  # our error page


def test_pages_are_revalidated_and_answer_304(client):
    first = client.get("/lab")
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = client.get("/lab", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_pages_need_a_login_and_lab_api_calls_get_403(anonymous):
    for url in ("/lab", "/tree", "/notebooks/a.ipynb", "/edit/a.txt", "/consoles/a", "/doc/tree/a"):
        response = anonymous.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    for url in ("/lab/api/settings", "/lab/api/workspaces", "/api/config/notebook"):
        response = anonymous.get(url)
        assert response.status_code == 403 and response.is_json and "message" in response.json


def test_federated_extensions_of_the_environment_are_in_the_page_config(client):
    config = page_config(client.get("/lab"))
    listed = {entry["name"]: entry for entry in config["federated_extensions"]}
    widgets = listed["@jupyter-widgets/jupyterlab-manager"]  # ipywidgets, from the test extra
    assert widgets["load"].startswith("static/remoteEntry.")
    assert client.get(f"/lab/extensions/{widgets['name']}/{widgets['load']}").status_code == 200


def test_everything_moves_under_the_prefix(make_app):
    browser = make_app({"server": {"base_url": "/ipython/"}}).test_client()
    assert browser.get("/").headers["Location"] == "/ipython/"
    assert browser.get(f"/ipython/?token={TOKEN}").headers["Location"] == "/ipython/"
    assert browser.get("/ipython/").headers["Location"] == "/ipython/tree"
    for url, app in (("/ipython/lab", "lab"), ("/ipython/tree", "notebook")):
        html = browser.get(url).get_data(as_text=True)
        config = page_config(browser.get(url))
        assert config["baseUrl"] == "/ipython/"
        assert config["fullStaticUrl"] == f"/ipython/static/{app}"
        assert config["fullSettingsUrl"] == "/ipython/lab/api/settings"
        assert config["settingsUrl"] == "/lab/api/settings"  # joined with baseUrl by the page
        for src in SCRIPTS.findall(html):
            assert src.startswith(f"/ipython/static/{app}/")
            assert browser.get(src).status_code == 200
        assert 'href="/ipython/static/favicon.svg"' in html
    assert browser.get("/ipython/lab/api/settings").status_code == 200


def test_a_proxy_prefix_reaches_the_page_config(make_app):
    client = make_app({"server": {"trust_xheaders": True}}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    config = page_config(client.get("/lab", headers={"X-Forwarded-Prefix": "/proxied"}))
    assert config["baseUrl"] == "/proxied/" and config["fullStaticUrl"] == "/proxied/static/lab"


@pytest.mark.parametrize("expose", [False, True])
def test_both_front_ends_expose_their_app_when_configured_and_know_the_licenses_url(make_app, expose):
    """ui.expose_app_in_browser: window.jupyterapp, what Galata and extensions' UI tests use."""
    client = make_app({"ui": {"expose_app_in_browser": expose}}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"token {TOKEN}"
    for url in ("/lab", "/tree"):
        config = page_config(client.get(url))
        assert config["exposeAppInBrowser"] is expose
        assert config["licensesUrl"] == config["fullLicensesUrl"] == "/lab/api/licenses"
