"""Where the two asset wheels put their files, which scripts a page loads, and version checks.

`notebook-frontend` ships Notebook 7's bundles and page templates inside its package;
`jupyterlab-js` ships JupyterLab's app folder (`static/`, `schemas/`, `themes/`) as data files
under `<prefix>/share/jupyter/lab`. Both are found through their installed file lists, so a
wheel installed with `--user` or `--prefix` is found too. The script a page loads is read
from the shipped index/template: a folder may hold stale bundles from an older install, so
its file names prove nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..config import ConfigError

# The versions this nbflask was written and tested against (pyproject.toml pins the same).
NOTEBOOK_DIST = "notebook-frontend"
LAB_DIST = "jupyterlab-js"
PINNED = {NOTEBOOK_DIST: "7.6.2", LAB_DIST: "4.6.2"}

# <script ... src="{{page_config.fullStaticUrl}}/main.abc.js?v=abc"> in the shipped pages.
_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=\"\{\{\s*page_config\.fullStaticUrl\s*\}\}/([^\"?]+)(\?[^\"]*)?\"")


class AssetsError(ConfigError):
    """The front-end wheels are missing or do not match: like a bad setting, the server
    refuses to start with one line to act on (a ConfigError, so every entry point says it)."""


@dataclass(frozen=True)
class Frontend:
    """One built front-end: its version, bundle folder, and the scripts its pages load."""

    name: str
    version: str
    static_dir: Path
    scripts: tuple[str, ...]


@dataclass(frozen=True)
class Assets:
    """Both front-ends plus JupyterLab's app folder (schemas and themes serve both)."""

    lab: Frontend
    notebook: Frontend
    lab_app_dir: Path

    @property
    def schemas_dir(self) -> Path:
        return self.lab_app_dir / "schemas"

    @property
    def themes_dir(self) -> Path:
        return self.lab_app_dir / "themes"


def page_scripts(template: str) -> tuple[str, ...]:
    """The script paths (relative to the static folder, query kept) a shipped page loads."""
    return tuple(name + (query or "") for name, query in _SCRIPT.findall(template))


def _distribution(name: str) -> metadata.Distribution:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        wanted = f"{name}=={PINNED[name]}"
        raise AssetsError(f"the front-end wheel {wanted} is not installed: pip install '{wanted}'") from None


def _installed_file(dist: metadata.Distribution, suffix: str) -> Path:
    for record in dist.files or ():
        if str(record).replace("\\", "/").endswith(suffix):
            path = Path(str(dist.locate_file(record))).resolve()
            if path.is_file():
                return path
    raise AssetsError(f"{dist.metadata['Name']} {dist.version} is broken: {suffix} is missing; reinstall it")


def check_versions(notebook: metadata.Distribution, lab: metadata.Distribution) -> None:
    """Refuse a pair of wheels this nbflask was not built for, in one line."""
    found = {NOTEBOOK_DIST: notebook.version, LAB_DIST: lab.version}
    wrong = [f"{name} {found[name]} (needs {PINNED[name]})" for name in PINNED if found[name] != PINNED[name]]
    if wrong:
        pins = " ".join(f"'{name}=={version}'" for name, version in PINNED.items())
        raise AssetsError(
            f"front-end wheels do not match this nbflask: {', '.join(wrong)}; pip install {pins}"
        )


def load() -> Assets:
    """Find both front-ends; AssetsError if a wheel is missing, broken or the wrong version."""
    notebook_dist, lab_dist = _distribution(NOTEBOOK_DIST), _distribution(LAB_DIST)
    check_versions(notebook_dist, lab_dist)
    lab_index = _installed_file(lab_dist, "share/jupyter/lab/static/index.html")
    notebook_tree = _installed_file(notebook_dist, "notebook_frontend/templates/tree.html")
    lab = Frontend("lab", lab_dist.version, lab_index.parent, page_scripts(lab_index.read_text("utf-8")))
    notebook = Frontend(
        "notebook",
        notebook_dist.version,
        notebook_tree.parent.parent / "static",
        page_scripts(notebook_tree.read_text("utf-8")),
    )
    for frontend in (lab, notebook):
        if not frontend.scripts:
            raise AssetsError(f"{frontend.name} {frontend.version}: no script found in its shipped page")
    return Assets(lab=lab, notebook=notebook, lab_app_dir=lab_index.parent.parent)
