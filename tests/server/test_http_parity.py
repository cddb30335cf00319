"""Jupyter Server's answers for /api/me, /api/spec.yaml, /api/resolvePath, URLs ending in a
slash, percent-encoded redirects and bad input, through Flask's test client.

The expected status codes and bodies were taken from jupyter_server 2.21 side by side.
"""

from __future__ import annotations

import json
from urllib.parse import quote, unquote

import pytest
import yaml
from conftest import TOKEN
from logins import SEED_HASH, log_in

# /api/me -------------------------------------------------------------------------------------


def test_me_is_the_identity_model(client, anonymous):
    body = client.get("/api/me").get_json()
    assert set(body["identity"]) == {"username", "name", "display_name", "initials", "avatar_url", "color"}
    assert body["identity"]["username"] and body == client.get("/api/me").get_json()  # stable
    assert body["permissions"] == {"updatable_fields": []}
    assert anonymous.get("/api/me").status_code == 403


def test_me_answers_the_permissions_asked_for(client):
    asked = json.dumps({"contents": ["read", "write"], "kernels": []})
    body = client.get("/api/me", query_string={"permissions": asked}).get_json()
    assert body["permissions"] == {"contents": ["read", "write"], "kernels": [], "updatable_fields": []}
    assert client.get("/api/me", query_string={"permissions": ""}).status_code == 200


@pytest.mark.parametrize("raw", ["notjson", "[1]", '{"contents": "read"}', '{"contents": [1]}', "[" * 5000])
def test_me_refuses_permissions_of_the_wrong_shape(client, raw):
    response = client.get("/api/me", query_string={"permissions": raw})
    assert response.status_code == 400
    assert response.get_json() == {
        "message": f'permissions should be a JSON dict of {{"resource": ["action",]}}, got {raw!r}',
        "reason": None,
    }


# /api/spec.yaml ------------------------------------------------------------------------------


def test_spec_describes_every_api_route(app, client, anonymous):
    response = client.get("/api/spec.yaml")
    assert response.status_code == 200 and response.mimetype == "text/x-yaml"
    spec = yaml.safe_load(response.data)
    assert spec["swagger"] == "2.0"
    documented = {path.replace("{", "<").replace("}", ">") for path in spec["paths"]}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api", "/kernelspecs")):
            route = rule.rule.replace("<path:", "<")
            assert route in documented or route == "/api/contents", route
    assert anonymous.get("/api/spec.yaml").status_code == 403


# /api/resolvePath ----------------------------------------------------------------------------


@pytest.fixture
def tree(root_dir):
    from pathlib import Path

    import nbformat

    root = Path(root_dir)
    (root / "sub").mkdir()
    (root / "sub" / "what?#.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x").write_text("")
    (root / "into-hidden").symlink_to(root / ".hidden")
    return root


@pytest.mark.parametrize(
    ("path", "resolved"),
    [
        ("sub", "sub"), ("sub/", "sub"), ("/sub", "sub"), ("", ""), ("sub/what?#.ipynb", "sub/what?#.ipynb"),
        ("nope", None), ("../x", None), (".hidden/x", None), ("/etc", None),
        ("into-hidden", None), ("into-hidden/x", None),
    ],
)
def test_resolve_path_in_the_server_scope(client, tree, path, resolved):
    body = client.get("/api/resolvePath", query_string={"path": path}).get_json()
    assert body == {"resolved": [{"scope": "server", "path": resolved}] if resolved is not None else []}


def test_resolve_path_takes_an_absolute_path_inside_the_root(client, tree):
    body = client.get("/api/resolvePath", query_string={"path": str(tree / "sub")}).get_json()
    assert body == {"resolved": [{"scope": "server", "path": "sub"}]}


def test_resolve_path_needs_a_path_and_reports_a_missing_kernel(client, tree):
    response = client.get("/api/resolvePath")
    assert response.status_code == 400 and response.get_json()["message"] == "Missing argument path"
    kernel_id = "4f1e2b4c-0000-0000-0000-000000000000"
    body = client.get("/api/resolvePath", query_string={"path": "sub", "kernel": kernel_id}).get_json()
    assert body == {
        "resolved": [{"scope": "server", "path": "sub"}],
        "unresolved": [{"scope": "kernel", "reason": f"Kernel {kernel_id} could not be found"}],
    }


# Trailing slashes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("/api/", "/api"),
        ("/api/kernels/", "/api/kernels"),
        ("/api/status/", "/api/status"),
        ("/api/contents/sub/", "/api/contents/sub"),
        ("/tree/", "/tree"),
        ("/tree/sub/?a=1&b=%2F", "/tree/sub?a=1&b=%2F"),
        ("/login/", "/login"),
        ("/nope/", "/nope"),
        ("/api/contents/what%3F%23.ipynb/", "/api/contents/what%3F%23.ipynb"),
        ("//example.com/", "/example.com"),
        ("////foo///", "/foo"),
        ("/\\example.com/", "/%5Cexample.com"),
        ("/%2Fexample.com/", "/example.com"),
        ("/%5C%5Cexample.com/", "/%5C%5Cexample.com"),
    ],
)
def test_a_trailing_slash_redirects_to_the_url_without_it(anonymous, url, location):
    path, _, query = url.partition("?")
    # As a server hands it over: percent-decoded, then as latin-1 (the test client would read
    # `//example.com/` as a host name).
    raw = unquote(path).encode().decode("latin-1")
    response = anonymous.get(url, environ_overrides={"PATH_INFO": raw, "QUERY_STRING": query})
    assert response.status_code == 302
    assert response.headers["Location"] == location


def test_trailing_slash_redirects_stay_under_the_prefix(make_app):
    client = make_app({"server": {"base_url": "/ipython/"}}).test_client()
    for path, location in [("/tree/", "/ipython/tree"), ("//evil.example/", "/ipython/evil.example"),
                           ("/api/kernels/", "/ipython/api/kernels")]:
        raw = {"SCRIPT_NAME": "", "PATH_INFO": "/ipython" + path}
        response = client.get("/ipython/", environ_overrides=raw)
        assert response.headers["Location"] == location


def test_routes_jupyter_answers_with_their_slash_keep_it(client):
    assert client.get("/api/contents/").get_json()["type"] == "directory"
    assert client.get("/api/contents/?type=directory").status_code == 200
    assert client.get("/tree").status_code == 200


# Percent-encoding survives redirects ---------------------------------------------------------

ODD = "what%3F%23.ipynb"  # what?#.ipynb


def test_the_login_redirect_keeps_percent_encoding(make_app, tree):
    app = make_app({"auth": {"password": SEED_HASH}})
    browser = app.test_client()
    login = browser.get(f"/notebooks/sub/{ODD}?view=1")
    assert login.status_code == 302
    next_url = unquote(login.headers["Location"].split("next=", 1)[1])
    assert next_url == f"/notebooks/sub/{ODD}?view=1"
    landed = log_in(browser, next=next_url)
    assert landed.headers["Location"] == f"/notebooks/sub/{ODD}?view=1"
    assert browser.get(landed.headers["Location"]).status_code == 200


def test_the_token_redirect_keeps_percent_encoding(anonymous, tree):
    response = anonymous.get(f"/notebooks/sub/{ODD}?token={TOKEN}")
    assert response.headers["Location"] == f"/notebooks/sub/{ODD}"
    assert anonymous.get(response.headers["Location"]).status_code == 200
    unicode = anonymous.get(f"/tree/{quote('é x')}?token={TOKEN}")
    assert unicode.headers["Location"] == "/tree/%C3%A9%20x"


# Bad input -----------------------------------------------------------------------------------


def nested_bodies(depth: int) -> list[tuple[str, str, str]]:
    deep = "[" * depth + "]" * depth
    notebook = '{"type": "notebook", "content": {"nbformat": 4, "nbformat_minor": 5, "cells": [],' \
               ' "metadata": {"x": ' + deep + "}}}"
    return [("put", "/api/contents/deep.ipynb", notebook),
            ("post", "/api/sessions", '{"path": "a", "kernel": ' + deep + "}"),
            ("post", "/api/kernels", '{"name": ' + deep + "}")]


def test_json_nested_past_the_recursion_limit_is_400(client):
    for method, url, body in nested_bodies(100_000):
        response = getattr(client, method)(url, data=body, content_type="application/json")
        assert response.status_code == 400, (url, response.get_json())
        assert response.get_json() == {"message": "Invalid JSON in request body: nested too deeply",
                                       "reason": "bad json"}


def test_a_notebook_nested_500_deep_is_saved_and_read_back(client):
    # Jupyter Server answers 500 here ("maximum recursion depth exceeded" while it saves; it
    # stores a depth of 300): a valid notebook that JSON can parse is kept, not refused.
    (_, contents, notebook), *others = nested_bodies(500)
    assert client.put(contents, data=notebook, content_type="application/json").status_code == 201
    read = client.get(contents).get_json()["content"]
    assert read["metadata"] == json.loads(notebook)["content"]["metadata"]
    for method, url, body in others:  # JSON that parses, of the wrong shape
        response = getattr(client, method)(url, data=body, content_type="application/json")
        assert response.status_code == 400, (url, response.get_json())
        assert set(response.get_json()) == {"message", "reason"}


@pytest.mark.parametrize("path", ["/api/contents/\xff", "/tree/\xc3(", "/files/a\x80b"])
def test_a_path_that_is_not_utf8_is_400(client, path):
    response = client.get("/", environ_overrides={"PATH_INFO": path})  # bytes as latin-1, as servers do
    assert response.status_code == 400
    assert response.get_json()["message"].startswith("Invalid unicode in path")
