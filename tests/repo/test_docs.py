"""The documents a newcomer relies on stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from nbflask.config import SECTIONS, default_yaml, load_settings
from nbflask.config.settings import yaml_keys

REPO = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_readme_gives_two_set_up_commands_and_ci_runs_the_test_one():
    install_and_run, test = readme_commands()[:2]
    assert "pip install" in install_and_run and install_and_run.endswith("nbflask run")
    assert "pytest" in test
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines


def test_default_example_is_what_config_init_writes():
    assert (REPO / "config" / "default.yaml").read_text() == default_yaml()


def test_every_setting_is_documented():
    doc = (REPO / "docs" / "configuration.md").read_text()
    for section, cls in SECTIONS.items():
        for key in yaml_keys(cls):
            assert f"`{section}.{key}`" in doc, f"{section}.{key} missing from docs/configuration.md"


def test_example_configs_load(tmp_path):
    cert = tmp_path / "mycert.pem"
    cert.write_text("exists")
    for path in sorted((REPO / "config").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        overrides = {}
        if raw.get("server", {}).get("certfile"):
            overrides["server"] = {"certfile": str(cert)}
        if "password" in raw.get("auth", {}) and raw["auth"].get("token") == "":
            overrides["auth"] = {"password": "sha1:0e112c3ddfce:a68df677475c2b47b6e86d0467eec97ac5f4b85a"}
        load_settings(path, environ={}, overrides=overrides)


def named_paths(pattern: str) -> list[str]:
    """`source names path` for each path matching `pattern` that the docs, comments and scripts
    name and the repo does not have."""
    named = re.compile(pattern)
    sources = [REPO / "README.md", REPO / ".ci" / "run", *(REPO / "docs").glob("*.md"),
               *(REPO / "config").iterdir(),
               *(REPO / "nbflask").rglob("*.py"), *(REPO / "benchmarks").glob("*.py"),
               *(path for path in (REPO / "tests").rglob("*") if path.suffix in (".py", ".sh", ".txt"))]
    return [f"{source.relative_to(REPO)} names {path}" for source in sources
            for path in named.findall(source.read_text()) if not any(REPO.glob(path.rstrip("/")))]


def test_the_test_paths_the_documents_name_exist():
    """Docs, comments and scripts point at test files as proof; a test moved or renamed must
    take those pointers along."""
    missing = named_paths(r"tests/[\w/.*-]*[\w*/]")
    assert not missing, missing


def test_the_module_paths_the_documents_name_exist():
    """The same for the code they point at: a module moved or split takes its mentions along."""
    missing = named_paths(r"(?<![\w/])nbflask/[\w/]*\w\.py")
    assert not missing, missing


def test_the_readme_says_what_each_test_folder_holds():
    readme = (REPO / "README.md").read_text()
    folders = [path.name for path in (REPO / "tests").iterdir() if path.is_dir()]
    assert [name for name in folders if name != "__pycache__" and f"| `tests/{name}/` |" not in readme] == []
