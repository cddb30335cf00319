"""Kernelspecs: discovery on the Jupyter data paths, the API models and resources."""

from __future__ import annotations

import json
import sys

import pytest

from nbflask.kernels import kernelspecs


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
                 "/kernelspecs/echo/kernel.json", "/kernelspecs/echo/../../etc/passwd"):
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 404, path


def test_kernelspecs_need_authentication(anonymous):
    assert anonymous.get("/api/kernelspecs").status_code == 403
