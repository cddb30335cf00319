"""Config files as users handle them: profiles, the commented file `config init` writes,
and `nbflask passwd`'s edit of one key in a file a user wrote by hand."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from .layers import read_yaml
from .settings import SECTIONS, ConfigError, Settings, yaml_keys


def user_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Per-user folder for profiles (`nbflask config init --profile NAME`)."""
    environ = os.environ if environ is None else environ
    if environ.get("NBFLASK_CONFIG_DIR"):
        return Path(environ["NBFLASK_CONFIG_DIR"])
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "nbflask"


def profile_path(name: str, environ: Mapping[str, str] | None = None) -> Path:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"profile: expected a plain name such as 'nbserver', found {name!r}")
    return user_config_dir(environ) / "profiles" / f"{name}.yaml"


def default_yaml() -> str:
    """Every option with its default and a one-line comment: the body of `config init`."""
    lines = ["# nbflask configuration: every option, with its default.", ""]
    defaults = Settings()
    for section, cls in SECTIONS.items():
        lines.append(f"{section}:")
        for key, f in yaml_keys(cls).items():
            value = getattr(getattr(defaults, section), f.name)
            dumped = yaml.safe_dump(value, default_flow_style=True).strip()
            if dumped.endswith("\n..."):
                dumped = dumped[: -len("\n...")]
            dumped = dumped.removesuffix("...").strip()
            lines.append(f"  # {f.metadata['key'].help}")
            lines.append(f"  {key}: {dumped}")
        lines.append("")
    return "\n".join(lines)


def set_in_file(path: str | os.PathLike[str], section: str, key: str, value: str) -> None:
    """Set `section.key` to the string `value` in a YAML file, leaving every other line as is.

    Comments and layout survive because only the key's line is replaced (or one line added);
    the result is parsed again and must equal the old settings plus the new value, so a file
    this cannot edit safely is refused rather than damaged. A new file is created 0600.
    """
    from .. import runtime

    target = Path(path)
    text = target.read_text(encoding="utf-8") if target.exists() else ""
    before = (read_yaml(target) if text.strip() else None) or {}
    if not isinstance(before, Mapping) or not isinstance(before.get(section) or {}, Mapping):
        raise ConfigError(f"{path}: expected a mapping of sections with '{section}' a mapping")
    scalar = yaml.safe_dump(value, default_style="'", width=1 << 20).strip()
    lines = text.splitlines(keepends=True)
    header = next((i for i, line in enumerate(lines) if line.split("#")[0].rstrip() == f"{section}:"), None)
    if header is None:
        prefix = "" if not text or text.endswith("\n") else "\n"
        lines.append(f"{prefix}{section}:\n  {key}: {scalar}\n")
    else:
        end = header + 1
        while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t#"):
            end += 1
        body = [i for i in range(header + 1, end) if lines[i].split("#")[0].strip()]
        first = lines[body[0]] if body else "  "
        indent = first[: len(first) - len(first.lstrip())]
        mine = next((i for i in body if lines[i].startswith(f"{indent}{key}:")), None)
        if mine is None:
            lines.insert(header + 1, f"{indent}{key}: {scalar}\n")
        else:
            lines[mine] = f"{indent}{key}: {scalar}\n"
    updated = "".join(lines)
    expected = {**before, section: {**(before.get(section) or {}), key: value}}
    try:
        matches = yaml.safe_load(updated) == expected
    except yaml.YAMLError:
        matches = False
    if not matches:
        raise ConfigError(
            f"{path}: cannot set {section}.{key} without disturbing the rest of the file;"
            f" set it by hand under '{section}:'"
        )
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o600
    runtime.write_private(target, updated.encode("utf-8"))
    target.chmod(mode)
