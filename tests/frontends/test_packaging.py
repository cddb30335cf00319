"""What `pip install nbflask` brings and checks: the two front-end asset wheels at matching
versions (checked at start-up, one line if not), and no Jupyter server underneath.

tornado does come in, but only as a dependency of the Python kernel (ipykernel and its
jupyter_client); the server neither depends on it through anything else nor imports it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from live import BIN
from packaging.requirements import Requirement

from nbflask.config import ConfigError
from nbflask.frontend import assets

REPO = Path(__file__).resolve().parents[2]
SERVERS = {"jupyter-server", "jupyterlab", "notebook", "jupyterlab-server", "nbclassic", "jupyverse"}


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def dependency_paths() -> dict[str, list[str]]:
    """Each installed distribution `pip install nbflask` pulls in, with one path reaching it."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    paths: dict[str, list[str]] = {}
    todo = [(Requirement(line), ["nbflask"]) for line in project["dependencies"]]
    while todo:
        requirement, path = todo.pop()
        name = canonical(requirement.name)
        if name in paths or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        paths[name] = [*path, name]
        for line in metadata.distribution(name).requires or ():
            todo.append((Requirement(line), paths[name]))
    return paths


def test_no_jupyter_server_among_the_dependencies():
    paths = dependency_paths()
    assert {"notebook-frontend", "jupyterlab-js", "flask", "ipykernel"} <= set(paths)
    assert not SERVERS & set(paths), {name: paths[name] for name in SERVERS & set(paths)}


def test_tornado_comes_only_with_the_python_kernel():
    """Every way to tornado goes through ipykernel, which the kernels run on, not the server."""
    paths = dependency_paths()
    for name, path in paths.items():
        if name == "tornado" or "tornado" in path:
            assert "ipykernel" in path or "jupyter-client" in path, path


def test_the_server_imports_no_tornado_and_no_jupyter_server(tmp_path):
    """(The optional `export` extra's nbconvert does import tornado, through jupyter_client.)"""
    script = """
import sys
from nbflask.app import build_app
app = build_app({"auth": {"token": "t"}, "store": {"class": "memory"}})
client = app.test_client()
for url in ("/lab", "/tree", "/lab/api/settings", "/api/kernelspecs", "/api/contents"):
    assert client.get(url, headers={"Authorization": "token t"}).status_code == 200, url
loaded = {m.split(".")[0] for m in sys.modules}
print(sorted(loaded & {"tornado", "jupyter_server", "jupyterlab_server", "notebook"}))
"""
    env = {**os.environ, "NBFLASK_DATA_DIR": str(tmp_path), "NBFLASK_RUNTIME_DIR": str(tmp_path / "rt")}
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "[]"


def fake_distribution(folder: Path, name: str, version: str) -> None:
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_mismatched_wheels_are_named_with_the_fix(tmp_path):
    fake_distribution(tmp_path, "jupyterlab-js", "4.6.5")
    (found,) = metadata.distributions(name="jupyterlab-js", path=[str(tmp_path)])
    with pytest.raises(ConfigError) as refused:
        assets.check_versions(metadata.distribution("notebook-frontend"), found)
    message = str(refused.value)
    assert "\n" not in message
    assert "jupyterlab-js 4.6.5 (needs 4.6.2)" in message
    assert "pip install 'notebook-frontend==7.6.2' 'jupyterlab-js==4.6.2'" in message


def test_start_up_refuses_a_mismatched_wheel_in_one_line(tmp_path):
    shadow = tmp_path / "shadow"
    fake_distribution(shadow, "notebook-frontend", "7.5.0")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), str(REPO)]),
           "NBFLASK_DATA_DIR": str(tmp_path / "data"), "NBFLASK_RUNTIME_DIR": str(tmp_path / "rt")}
    run = subprocess.run([str(BIN / "nbflask"), "run", "--no-browser", "--port", "0"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert lines == [
        "nbflask: error: front-end wheels do not match this nbflask: notebook-frontend 7.5.0 (needs 7.6.2);"
        " pip install 'notebook-frontend==7.6.2' 'jupyterlab-js==4.6.2'"
    ], run.stderr


def test_the_pins_in_pyproject_are_the_ones_checked():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {canonical(r.name): str(r.specifier) for r in map(Requirement, project["dependencies"])}
    expected = {name: f"=={version}" for name, version in assets.PINNED.items()}
    assert {name: pins[name] for name in assets.PINNED} == expected
