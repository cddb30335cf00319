"""Kernelspecs: discovery on the Jupyter data paths, the API models and resources."""

from __future__ import annotations

import json
import logging
import shutil
import sys

import pytest

from nbflask.protocol import kernelspecs


@pytest.fixture
def extra_spec(tmp_path, monkeypatch):
    """A kernelspec 'echo' installed in a folder on JUPYTER_PATH."""
    folder = tmp_path / "jupyter" / "kernels" / "echo"
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps({
        "argv": ["python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Echo", "language": "python", "interrupt_mode": "message",
        "env": {"ECHO_VAR": "42"},
    }))
    (folder / "logo-64x64.png").write_bytes(b"\x89PNG fake")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return folder


def test_python3_is_offered_even_without_an_installed_kernelspec(monkeypatch, tmp_path):
    monkeypatch.setattr(kernelspecs, "kernel_dirs", lambda: [tmp_path / "nothing"])
    specs = kernelspecs.find_all()
    assert list(specs) == ["python3"]
    assert specs["python3"].command("/c.json")[:3] == [sys.executable, "-m", "ipykernel_launcher"]
    assert "logo-64x64.png" in specs["python3"].resources()


def test_specs_on_jupyter_path_are_found_with_argv_env_and_interrupt_mode(extra_spec):
    spec = kernelspecs.get("echo")
    assert spec.env == {"ECHO_VAR": "42"} and spec.interrupt_mode == "message"
    assert spec.command("/run/k.json") == [sys.executable, "-m", "ipykernel_launcher", "-f", "/run/k.json"]


def test_api_lists_specs_with_default_and_resource_urls(client, extra_spec):
    body = client.get("/api/kernelspecs").get_json()
    assert body["default"] == "python3"
    assert {"python3", "echo"} <= set(body["kernelspecs"])
    echo = body["kernelspecs"]["echo"]
    assert echo["spec"]["display_name"] == "Echo" and echo["spec"]["interrupt_mode"] == "message"
    assert echo["resources"] == {"logo-64x64": "/kernelspecs/echo/logo-64x64.png"}
    assert client.get("/api/kernelspecs/echo").get_json()["name"] == "echo"
    logo = client.get(echo["resources"]["logo-64x64"])
    assert logo.status_code == 200 and logo.data == b"\x89PNG fake"


def test_unknown_specs_and_resources_are_json_404s(client, extra_spec):
    for path in ("/api/kernelspecs/nope", "/kernelspecs/nope/logo-64x64.png",
                 "/kernelspecs/echo/nothere.txt", "/kernelspecs/echo/../../etc/passwd"):
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 404, path
        assert response.get_json()["message"], path


def test_names_are_case_insensitive_and_models_carry_the_installed_name(client, extra_spec):
    mixed = extra_spec.parent / "MiXed"
    shutil.copytree(extra_spec, mixed)
    assert client.get("/api/kernelspecs").get_json()["kernelspecs"]["mixed"]["name"] == "mixed"
    assert client.get("/kernelspecs/MIXED/logo-64x64.png").data == b"\x89PNG fake"
    model = client.get("/api/kernelspecs/ECHO").get_json()
    assert model["name"] == "echo" and model["spec"]["display_name"] == "Echo"
    assert model["resources"]["logo-64x64"] == "/kernelspecs/echo/logo-64x64.png"
    assert client.get("/api/kernelspecs/Python3").get_json()["name"] == "python3"
    for url in ("/kernelspecs/ECHO/logo-64x64.png", "/kernelspecs/Echo/logo-64x64.png"):
        logo = client.get(url)
        assert logo.status_code == 200 and logo.data == b"\x89PNG fake", url
    assert client.get("/kernelspecs/PYTHON3/logo-svg.svg").mimetype == "image/svg+xml"


def test_every_file_of_the_resource_folder_is_served_with_its_type(client, extra_spec):
    (extra_spec / "logo-128x128.png").write_bytes(b"\x89PNG big")
    (extra_spec / "help.html").write_text("<script>alert(1)</script>")
    (extra_spec / "docs").mkdir()
    (extra_spec / "docs" / "table.csv").write_text("a,b\n")
    (extra_spec / "noextension").write_text("x")
    resources = client.get("/api/kernelspecs/echo").get_json()["resources"]
    assert resources == {"logo-64x64": "/kernelspecs/echo/logo-64x64.png",
                         "logo-128x128": "/kernelspecs/echo/logo-128x128.png"}
    assert client.get(resources["logo-128x128"]).data == b"\x89PNG big"
    page = client.get("/kernelspecs/echo/help.html")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"].startswith("sandbox")  # no script on our origin
    assert client.get("/kernelspecs/echo/docs/table.csv").mimetype == "text/csv"
    assert client.get("/kernelspecs/echo/kernel.json").get_json()["display_name"] == "Echo"
    assert client.get("/kernelspecs/echo/noextension").mimetype == "application/octet-stream"


def test_hidden_files_folders_and_ways_out_of_the_resource_folder_are_404(client, extra_spec, tmp_path):
    (extra_spec / ".secret").write_text("SECRET-CONTENT")
    (extra_spec / ".git").mkdir()
    (extra_spec / ".git" / "config").write_text("SECRET-CONTENT")
    (extra_spec / "docs").mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("OUTSIDE-CONTENT")
    (extra_spec / "out.txt").symlink_to(outside)
    (extra_spec / "alias.txt").symlink_to(extra_spec / ".secret")
    (extra_spec / "up").symlink_to(tmp_path)
    for resource in (".secret", ".git/config", "docs", "docs/", "out.txt", "alias.txt", "up/outside.txt",
                     "docs/../.secret", "docs/../../echo/logo-64x64.png", "docs//x",
                     "%2e%2e/%2e%2e/outside.txt", "logo-64x64.png%00.txt"):
        response = client.get(f"/kernelspecs/echo/{resource}", follow_redirects=True)  # docs/: 302 first
        assert response.status_code == 404, resource
        assert b"SECRET-CONTENT" not in response.data and b"OUTSIDE-CONTENT" not in response.data, resource


@pytest.mark.parametrize("content, why", [
    ("[1, 2]", "JSON list"), ('"argv"', "JSON str"), ("{not json", "Expecting property name"),
    ('{"display_name": "no argv"}', "'argv'"), ('{"argv": []}', "'argv'"),
    ('{"argv": ["python", 3]}', "'argv'"), ('{"argv": ["python"], "env": ["A=1"]}', "'env'"),
    ('{"argv": ["python"], "metadata": 3}', "'metadata'"),
])
def test_an_unusable_kernel_json_is_skipped_with_a_warning(client, extra_spec, caplog, content, why):
    broken = extra_spec.parent / "broken"
    broken.mkdir()
    (broken / "kernel.json").write_text(content)
    with caplog.at_level(logging.WARNING, logger="nbflask.protocol.kernelspecs"):
        listing = client.get("/api/kernelspecs")
    assert listing.status_code == 200
    assert set(listing.get_json()["kernelspecs"]) == {"python3", "echo"}
    warning = [record.getMessage() for record in caplog.records if "broken" in record.getMessage()]
    assert len(warning) == 1 and why in warning[0] and str(broken / "kernel.json") in warning[0]
    assert client.get("/api/kernelspecs/broken").status_code == 404
    assert client.get("/kernelspecs/broken/kernel.json").status_code == 404


def test_kernelspecs_need_authentication(anonymous):
    assert anonymous.get("/api/kernelspecs").status_code == 403
