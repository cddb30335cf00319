"""JupyterLab's settings registry: plugin schemas, plus the user's JSON5 overrides.

Schemas come from JupyterLab's app folder (`schemas/<package>/<plugin>.json`, which also
holds Notebook 7's) and from each federated extension's `schemas/` folder; the id of one is
`<package>:<plugin>`. The user's overrides are kept verbatim (JSON5 with comments, as typed
in the Settings Editor) in the per-user state; the parsed `settings` beside them is what the
front-end merges over the schema defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import json5
from jsonschema import Draft7Validator

from ..api_error import APIError
from .userstate import UserState

KIND = "settings"


@dataclass(frozen=True)
class SchemaSource:
    """A folder of `<package>/<plugin>.json` schemas and the version they belong to."""

    folder: Path
    version: str


def _package_version(package_folder: Path, fallback: str) -> str:
    try:
        return str(json.loads((package_folder / "package.json.orig").read_text("utf-8"))["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return fallback


def parse_overrides(raw: str) -> dict[str, Any]:
    """The settings a JSON5 text holds; APIError 400 if it is not a JSON5 object."""
    try:
        value = json5.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise APIError(400, f"settings are not valid JSON5: {exc}") from None
    if not isinstance(value, dict):
        raise APIError(400, f"settings must be a JSON5 object, found {type(value).__name__}")
    return value


class SettingsRegistry:
    """Lists and reads plugin settings and saves the user's overrides of them."""

    def __init__(self, sources: list[SchemaSource], state: UserState) -> None:
        self.state = state
        self._schemas: dict[str, tuple[Path, str]] = {}
        self._parsed: dict[str, dict[str, Any]] = {}
        for source in sources:
            for schema in sorted(source.folder.glob("**/*.json")):
                package = schema.parent.relative_to(source.folder).as_posix()
                plugin_id = f"{package}:{schema.stem}"
                if package != "." and plugin_id not in self._schemas:
                    self._schemas[plugin_id] = (schema, _package_version(schema.parent, source.version))

    def ids(self) -> list[str]:
        return sorted(self._schemas)

    def _schema(self, plugin_id: str) -> tuple[dict[str, Any], str]:
        """The parsed schema (read once: the wheels do not change under a running server)."""
        if plugin_id not in self._schemas:
            raise APIError(404, f"no settings schema for plugin {plugin_id!r}")
        path, version = self._schemas[plugin_id]
        if plugin_id not in self._parsed:
            try:
                self._parsed[plugin_id] = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise APIError(500, f"the settings schema of {plugin_id!r} cannot be read: {exc}") from None
        return self._parsed[plugin_id], version

    def get(self, plugin_id: str) -> dict[str, Any]:
        """One plugin's model: its schema, the raw user text and the settings parsed from it."""
        schema, version = self._schema(plugin_id)
        saved = self.state.get(KIND, plugin_id)
        raw = saved.decode("utf-8") if saved is not None else "{}"
        warning = None
        try:
            settings = parse_overrides(raw)
        except APIError as exc:
            settings, warning = {}, exc.message
        return {
            "id": plugin_id,
            "schema": schema,
            "version": version,
            "raw": raw,
            "settings": settings,
            "warning": warning,
            "last_modified": None,
            "created": None,
        }

    def list(self) -> list[dict[str, Any]]:
        return [self.get(plugin_id) for plugin_id in self.ids()]

    def save(self, plugin_id: str, raw: str) -> None:
        """Keep `raw` as the user's overrides if it parses and fits the plugin's schema."""
        schema, _ = self._schema(plugin_id)
        settings = parse_overrides(raw)
        errors = sorted(Draft7Validator(schema).iter_errors(settings), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "(top level)"
            raise APIError(
                400, f"settings of {plugin_id!r} do not fit its schema at {where}: {errors[0].message}"
            )
        self.state.put(KIND, plugin_id, raw.encode("utf-8"))
