"""Kernelspecs: which kernels can be started, found where every Jupyter tool looks for them.

The folders are Jupyter's data paths (JUPYTER_PATH, the user's, sys.prefix's, the system's,
in jupyter_core's order; the first folder holding a name wins). `python3` is always offered,
from the ipykernel installed next to nbflask, even when no kernelspec is installed at all.
A folder whose `kernel.json` cannot be used is skipped with a warning, so one broken install
never takes the listing, or the other kernels, down with it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..security import file_inside

log = logging.getLogger(__name__)

NATIVE = "python3"
_NAME = re.compile(r"^[a-z0-9._-]+$", re.IGNORECASE)
_SCRIPTS = ("kernel.js", "kernel.css")


class NoSuchKernelSpec(LookupError):
    """No kernelspec of that name is installed."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no kernelspec named '{name}'")
        self.name = name


@dataclass(frozen=True)
class KernelSpec:
    name: str
    resource_dir: Path
    argv: list[str]
    display_name: str
    language: str
    interrupt_mode: str = "signal"
    env: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "argv": self.argv,
            "display_name": self.display_name,
            "language": self.language,
            "interrupt_mode": self.interrupt_mode,
            "env": self.env,
            "metadata": self.metadata,
        }

    def resources(self) -> list[str]:
        """The files the API model advertises: `kernel.js`, `kernel.css` and every `logo-*`.

        Any other file of the resource folder can still be fetched (see `resource_path`).
        """
        try:
            names = sorted(entry.name for entry in self.resource_dir.iterdir() if entry.is_file())
        except OSError:
            return []
        return [name for name in names if name in _SCRIPTS or name.startswith("logo-")]

    def command(self, connection_file: str) -> list[str]:
        """argv with `{connection_file}` and `{resource_dir}` filled in.

        A bare `python`/`python3` (as ipykernel's wheel installs it) means the interpreter
        running nbflask, not whichever one comes first on PATH.
        """
        major, minor = sys.version_info[:2]
        argv = list(self.argv)
        if argv[0] in ("python", f"python{major}", f"python{major}.{minor}"):
            argv[0] = sys.executable
        resource_dir = str(self.resource_dir)
        return [
            part.replace("{connection_file}", connection_file).replace("{resource_dir}", resource_dir)
            for part in argv
        ]


def kernel_dirs() -> list[Path]:
    from jupyter_core.paths import jupyter_path

    return [Path(path) for path in jupyter_path("kernels")]


def _ipykernel_resources() -> Path:
    """ipykernel's logo folder, found without importing ipykernel: importing it imports
    jupyter_client and tornado, which the server itself never needs (only kernels do)."""
    spec = importlib.util.find_spec("ipykernel")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("ipykernel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources"


def _native() -> KernelSpec:
    return KernelSpec(
        name=NATIVE,
        resource_dir=_ipykernel_resources(),
        argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        display_name="Python 3 (ipykernel)",
        language="python",
        metadata={"debugger": True},
    )


class UnusableSpec(ValueError):
    """A kernel.json that cannot describe a kernel; the message says why."""


def _parse(data: Any) -> dict[str, Any]:
    """The fields of a kernel.json document, checked the way a launcher will need them."""
    if not isinstance(data, dict):
        raise UnusableSpec(f"it holds a JSON {type(data).__name__}, not an object")
    argv = data.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(part, str) for part in argv):
        raise UnusableSpec("'argv' must be a non-empty list of strings")
    for key in ("env", "metadata"):
        if not isinstance(data.get(key) or {}, dict):
            raise UnusableSpec(f"'{key}' must be an object")
    return data


def _load(name: str, folder: Path) -> KernelSpec | None:
    """The spec in `folder`, or None (with a warning saying why) if it cannot be used."""
    kernel_json = folder / "kernel.json"
    try:
        data = _parse(json.loads(kernel_json.read_text(encoding="utf-8")))
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("skipping kernelspec '%s': %s: %s", name, kernel_json, exc)
        return None
    mode = data.get("interrupt_mode", "signal")
    return KernelSpec(
        name=name,
        resource_dir=folder,
        argv=data["argv"],
        display_name=str(data.get("display_name", name)),
        language=str(data.get("language", "")),
        interrupt_mode=mode if mode in ("signal", "message") else "signal",
        env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
        metadata=data.get("metadata") or {},
    )


def find_all() -> dict[str, KernelSpec]:
    """Every usable kernelspec by (lower-case) name; earlier data paths win."""
    specs: dict[str, KernelSpec] = {}
    for directory in kernel_dirs():
        if not directory.is_dir():
            continue
        for folder in sorted(directory.iterdir()):
            name = folder.name.lower()
            if name in specs or not _NAME.match(name) or not (folder / "kernel.json").is_file():
                continue
            spec = _load(name, folder)
            if spec is not None:
                specs[name] = spec
    specs.setdefault(NATIVE, _native())
    return specs


def get(name: str) -> KernelSpec:
    spec = find_all().get(name.lower()) if _NAME.match(name or "") else None
    if spec is None:
        raise NoSuchKernelSpec(name)
    return spec


def resource_path(spec: KernelSpec, resource: str) -> Path | None:
    """The file behind `/kernelspecs/<name>/<resource>`: any regular file inside the spec's
    resource folder (subfolders included), or None: the rule of every public file
    (`security.file_inside`)."""
    return file_inside(spec.resource_dir, resource)
