"""Federated JupyterLab extensions installed in the environment (prebuilt, no JS build).

A pip-installed extension such as ipywidgets' `jupyterlab_widgets` drops a folder with a
`package.json` into `share/jupyter/labextensions` (`<name>/` or `@scope/<name>/`). The folders
searched are nbflask's own (`nbflask/labextensions`, built from `frontend/`), then Jupyter's
data path (jupyter_core: the user's, the environment's, the system's); first found wins, as in
JupyterLab. The page config lists each one; the server serves its `static/` files and its
settings schemas.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_path

log = logging.getLogger(__name__)

_BUILD_KEYS = ("extension", "mimeExtension", "style")


@dataclass(frozen=True)
class Extension:
    """One installed federated extension: where it lives and what the page loads from it."""

    name: str
    version: str
    path: Path
    build: dict[str, Any]

    @property
    def static_dir(self) -> Path:
        return self.path / "static"

    @property
    def schemas_dir(self) -> Path:
        return self.path / "schemas"

    @property
    def themes_dir(self) -> Path:
        return self.path / "themes"

    def page_entry(self) -> dict[str, Any]:
        """What the page config's `federated_extensions` list holds for this extension."""
        entry: dict[str, Any] = {"name": self.name, "load": self.build["load"]}
        entry.update({key: self.build[key] for key in _BUILD_KEYS if key in self.build})
        entry["entrypoints"] = self.build.get("entrypoints")
        return entry


BUNDLED = Path(__file__).resolve().parent.parent / "labextensions"  # nbflask's own, prebuilt


def search_path() -> list[Path]:
    """The labextensions folders, highest priority first: nbflask's own (they speak its API),
    then Jupyter's data path."""
    return [BUNDLED, *(Path(folder) for folder in jupyter_path("labextensions"))]


def _read(package_json: Path) -> Extension | None:
    try:
        package = json.loads(package_json.read_text("utf-8"))
        build = package["jupyterlab"]["_build"]
        if not isinstance(build, dict) or not isinstance(build.get("load"), str):
            raise TypeError("jupyterlab._build.load is missing")
        return Extension(str(package["name"]), str(package.get("version", "")), package_json.parent, build)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring lab extension %s: %s", package_json.parent, exc)
        return None


def discover(folders: list[Path] | None = None) -> list[Extension]:
    """Every valid extension in `folders` (default: `search_path()`), sorted by name."""
    found: dict[str, Extension] = {}
    for folder in search_path() if folders is None else folders:
        candidates = sorted(folder.glob("[!@]*/package.json")) + sorted(folder.glob("@*/*/package.json"))
        for package_json in candidates:
            extension = _read(package_json)
            if extension is not None and extension.name not in found:
                found[extension.name] = extension
    return [found[name] for name in sorted(found)]
