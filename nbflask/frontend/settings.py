"""JupyterLab's settings registry: plugin schemas, plus the user's JSON5 overrides.

Schemas come from JupyterLab's app folder (`schemas/<package>/<plugin>.json`, which also
holds Notebook 7's) and from each federated extension's `schemas/` folder; the id of one is
`<package>:<plugin>`. The user's overrides are kept verbatim (JSON5 with comments, as typed
in the Settings Editor) in the per-user state; the parsed `settings` beside them is what the
front-end merges over the schema defaults.

Parsing JSON5 is pure Python and slow (about 7 s for 1 MiB), and every page load lists every
plugin's settings. So a settings document may be at most MAX_SETTINGS_BYTES (Jupyter's own are
a few KiB): a larger save is refused (413) and a larger stored one is not parsed but reported
in `warning`. Plain JSON is parsed by the standard library's C parser first; parsing and
schema validation run off the gevent loop; a stored document is parsed once per version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import json5
from jsonschema import Draft7Validator

from ..api_error import APIError
from ..blocking import run_blocking, run_blocking_if
from .userstate import UserState

KIND = "settings"
#: The largest settings document saved or read, in bytes (UTF-8 of the JSON5 text).
MAX_SETTINGS_BYTES = 256 * 1024
#: The largest request body carrying one: `{"raw": ...}` with the text JSON-escaped (a newline
#: or a quote takes two bytes), so a document within the limit always fits.
MAX_SETTINGS_BODY = 2 * MAX_SETTINGS_BYTES + 1024


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
    """The settings a JSON5 text holds; APIError 400 if it is not a JSON5 object.

    JSON is JSON5 with the same meaning, so the C parser is tried first: it takes
    microseconds where the pure-Python JSON5 parser takes seconds. CPU-bound: call it off
    the gevent loop for anything but a few bytes.
    """
    if not raw.strip():
        return {}
    try:
        try:
            value = json.loads(raw)
        except ValueError:
            value = json5.loads(raw)
    except ValueError as exc:
        raise APIError(400, f"settings are not valid JSON5: {exc}") from None
    except RecursionError:
        raise APIError(400, "settings are not valid JSON5: nested too deeply") from None
    if not isinstance(value, dict):
        raise APIError(400, f"settings must be a JSON5 object, found {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Overrides:
    """A stored settings document as the front-end gets it."""

    saved: bytes | None
    raw: str
    settings: dict[str, Any]
    warning: str | None


def read_overrides(saved: bytes | None) -> Overrides:
    """What the front-end gets of a stored document: one it cannot parse, or one too large to
    parse, is shown as empty settings with a warning (and a stand-in `raw` saying why, as the
    page parses `raw` itself) and left as stored, so nothing is lost until the user saves."""
    if saved is None:
        return Overrides(saved, "{}", {}, None)
    if len(saved) > MAX_SETTINGS_BYTES:
        warning = (f"the saved settings are {len(saved)} bytes, more than the {MAX_SETTINGS_BYTES} a"
                   " settings document may be; they are ignored until you save smaller ones")
        return Overrides(saved, f"// {warning}\n{{}}\n", {}, warning)
    raw = saved.decode("utf-8", "replace")
    try:
        return Overrides(saved, raw, parse_overrides(raw), None)
    except APIError as exc:
        return Overrides(saved, raw, {}, exc.message)


class SettingsRegistry:
    """Lists and reads plugin settings and saves the user's overrides of them."""

    def __init__(self, sources: list[SchemaSource], state: UserState) -> None:
        self.state = state
        self._schemas: dict[str, tuple[Path, str]] = {}
        self._parsed: dict[str, dict[str, Any]] = {}
        self._overrides: dict[str, Overrides] = {}  # the last version read or saved, per plugin
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

    def _read(self, plugin_id: str) -> Overrides:
        """The stored overrides, parsed off the loop once per version: every page load lists
        every plugin's settings, and another web host may have saved a new version."""
        saved = self.state.get(KIND, plugin_id)
        known = self._overrides.get(plugin_id)
        if known is not None and known.saved == saved:
            return known
        overrides = run_blocking_if(saved is not None, read_overrides, saved)
        self._overrides[plugin_id] = overrides
        return overrides

    def get(self, plugin_id: str) -> dict[str, Any]:
        """One plugin's model: its schema, the raw user text and the settings parsed from it."""
        schema, version = self._schema(plugin_id)
        overrides = self._read(plugin_id)
        return {
            "id": plugin_id,
            "schema": schema,
            "version": version,
            "raw": overrides.raw,
            "settings": overrides.settings,
            "warning": overrides.warning,
            "last_modified": None,
            "created": None,
        }

    def list(self) -> list[dict[str, Any]]:
        return [self.get(plugin_id) for plugin_id in self.ids()]

    def save(self, plugin_id: str, raw: str) -> None:
        """Keep `raw` as the user's overrides if it parses and fits the plugin's schema;
        413 if it is larger than MAX_SETTINGS_BYTES."""
        schema, _ = self._schema(plugin_id)
        try:
            saved = raw.encode("utf-8")
        except UnicodeEncodeError as exc:  # JSON carries lone surrogates; a UTF-8 file cannot
            raise APIError(400, f"settings of {plugin_id!r} are not valid Unicode: {exc.reason}"
                                f" at character {exc.start}") from None
        if len(saved) > MAX_SETTINGS_BYTES:
            raise APIError(413, f"settings of {plugin_id!r} too large: {len(saved)} bytes, the limit is"
                                f" {MAX_SETTINGS_BYTES}", "too large")
        settings = run_blocking(checked_overrides, plugin_id, schema, raw)
        self.state.put(KIND, plugin_id, saved)
        self._overrides[plugin_id] = Overrides(saved, raw, settings, None)


def checked_overrides(plugin_id: str, schema: dict[str, Any], raw: str) -> dict[str, Any]:
    """The settings `raw` holds if they fit the plugin's schema, else APIError 400.
    CPU-bound (JSON5, jsonschema): run off the gevent loop."""
    settings = parse_overrides(raw)
    errors = sorted(Draft7Validator(schema).iter_errors(settings), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(top level)"
        message = errors[0].message
        raise APIError(400, f"settings of {plugin_id!r} do not fit its schema at {where}: {message}")
    return settings
