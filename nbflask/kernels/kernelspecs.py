"""Kernelspecs: which kernels can be started, found where every Jupyter tool looks for them.

The folders are Jupyter's data paths (JUPYTER_PATH, the user's, sys.prefix's, the system's,
in jupyter_core's order; the first folder holding a name wins). `python3` is always offered,
from the ipykernel installed next to nbflask, even when no kernelspec is installed at all.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NATIVE = "python3"
_NAME = re.compile(r"^[a-z0-9._-]+$", re.IGNORECASE)
_RESOURCE_FILES = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg", "kernel.js", "kernel.css")


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
        """Files a client may fetch from `/kernelspecs/<name>/<file>`."""
        return [name for name in _RESOURCE_FILES if (self.resource_dir / name).is_file()]

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


def _native() -> KernelSpec:
    from ipykernel.kernelspec import RESOURCES

    return KernelSpec(
        name=NATIVE,
        resource_dir=Path(RESOURCES),
        argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        display_name="Python 3 (ipykernel)",
        language="python",
        metadata={"debugger": True},
    )


def _load(name: str, folder: Path) -> KernelSpec | None:
    """The spec in `folder`, or None (logged by the caller's silence) if unusable."""
    try:
        data = json.loads((folder / "kernel.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    argv = data.get("argv")
    if not isinstance(data, dict) or not isinstance(argv, list) or not argv:
        return None
    mode = data.get("interrupt_mode", "signal")
    return KernelSpec(
        name=name,
        resource_dir=folder,
        argv=[str(part) for part in argv],
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


def resource_path(name: str, resource: str) -> Path | None:
    """The file behind `/kernelspecs/<name>/<resource>`, only among the listed resources."""
    spec = get(name)
    if resource not in spec.resources():
        return None
    return spec.resource_dir / resource
