"""Settings from their layers: defaults < YAML file < environment < CLI flags.

Each layer is a mapping shaped like the YAML file. The layers are merged key by key while
remembering where each value came from, then every value is checked against its field's type
(YAML has already typed it), so a mistake is one line naming the file, variable or flag.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import yaml

from .checks import check
from .settings import (
    ENV_CONFIG,
    ENV_PREFIX,
    SECTIONS,
    ConfigError,
    Settings,
    StoreSettings,
    SwiftSettings,
    yaml_keys,
)


def _describe_type(annotation: Any, plural: bool = False) -> str:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(_describe_type(a) for a in args) + " or null"
    if origin is list:
        return "a list of " + _describe_type(typing.get_args(annotation)[0], plural=True)
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        keys, values = _describe_type(key_type, plural=True), _describe_type(value_type, plural=True)
        return f"a mapping of {keys} to {values}"
    if plural:
        return {int: "integers", float: "numbers", str: "strings"}.get(annotation, str(annotation))
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _coerce(annotation: Any, value: Any, quoted: bool = False) -> Any:
    """Return `value` as `annotation`, or raise TypeError; YAML already typed it.

    A number stands for a string unless `quoted`.
    """
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in typing.get_args(annotation):
            return None
        for arg in typing.get_args(annotation):
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, quoted)
            except TypeError:
                pass
        raise TypeError
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        if not isinstance(value, Mapping):
            raise TypeError
        return {_coerce(key_type, k): _coerce(value_type, v) for k, v in value.items()}
    if origin is list:
        (item,) = typing.get_args(annotation)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise TypeError
        return [_coerce(item, v) for v in value]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if annotation is str:
        numbers = () if quoted else (int, float)
        if isinstance(value, (str, *numbers)) and not isinstance(value, bool):
            return str(value)
        raise TypeError
    if isinstance(value, annotation):
        return value
    raise TypeError


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Layers:
    """Merges the layers of raw values while remembering where each one came from."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        self.origins: dict[tuple[str, str], str] = {}

    def add(self, data: Any, origin: str, where: str | None = None) -> None:
        if data is None:
            return
        if not isinstance(data, Mapping):
            raise ConfigError(f"{origin}: expected a mapping of sections, found {type(data).__name__}")
        for section, entries in data.items():
            if section not in SECTIONS:
                raise ConfigError(
                    f"{origin}: unknown section '{section}'{_did_you_mean(str(section), list(SECTIONS))};"
                    f" expected one of {', '.join(SECTIONS)}"
                )
            if entries is None:
                continue
            if not isinstance(entries, Mapping):
                raise ConfigError(
                    f"{origin}: {section}: expected a mapping of settings, found {entries!r}"
                )
            for key, value in entries.items():
                self.values[section][str(key)] = value
                self.origins[(section, str(key))] = where or origin

    def origin(self, section: str, key: str) -> str | None:
        """Where `section.key` was set, None if in no layer."""
        return self.origins.get((section, key))

    def build(self) -> Settings:
        built = {name: self._section(name, cls) for name, cls in SECTIONS.items()}
        return Settings(**built)

    def _section(self, name: str, cls: type) -> Any:
        values = self.values[name]
        if cls is not StoreSettings:
            return self._typed(name, cls, values)
        own = yaml_keys(StoreSettings)
        store = self._typed(name, cls, {key: value for key, value in values.items() if key in own})
        options = {key: value for key, value in values.items() if key not in own}
        if store.class_name != "swift":
            return dataclasses.replace(store, options=options)
        chosen_at = self.origins[(name, "class")]
        swift = self._typed(name, SwiftSettings, options, also=list(own), required_by=chosen_at)
        return dataclasses.replace(store, swift=swift)

    def _typed(
        self, section: str, cls: type, values: dict[str, Any], also: list[str] | None = None,
        required_by: str = "",
    ) -> Any:
        """`cls` made of the section's `values`, each of its field's type.

        `also`: the section's other keys, which another class takes (named when a key is
        unknown); `required_by`: where the line points when a key without default is missing.
        """
        hints = typing.get_type_hints(cls)
        keys = yaml_keys(cls)
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            origin = self.origins[(section, key)]
            if key not in keys:
                known = [*(also or []), *keys]
                raise ConfigError(
                    f"{origin}: unknown key '{section}.{key}'{_did_you_mean(key, known)};"
                    f" known keys in '{section}': {', '.join(known)}"
                )
            f = keys[key]
            quoted = f.metadata["key"].quoted
            try:
                kwargs[f.name] = _coerce(hints[f.name], value, quoted)
            except TypeError:
                wanted = _describe_type(hints[f.name]) + (" (quote it in YAML)" if quoted else "")
                raise ConfigError(f"{origin}: {section}.{key}: expected {wanted}, found {value!r}") from None
        for key, f in keys.items():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required and f.name not in kwargs:
                raise ConfigError(
                    f"{required_by}: {section}.{key}: expected {_describe_type(hints[f.name])}, found nothing"
                )
        return cls(**kwargs)


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Parse one YAML config file, turning I/O and syntax problems into a ConfigError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{where}: not valid YAML: {problem}") from None


def environment_layer(environ: Mapping[str, str]) -> dict[str, tuple[dict[str, Any], str]]:
    """Settings from `NBFLASK_<SECTION>_<KEY>` variables, each parsed as a YAML scalar."""
    found: dict[str, tuple[dict[str, Any], str]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG:
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section, _, key = rest.partition("_")
        if section not in SECTIONS or not key:
            continue
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        found[name] = ({section: {key: value}}, f"environment {name}")
    return found


def load_settings(
    config: str | os.PathLike[str] | Mapping[str, Any] | Settings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    override_origins: Mapping[tuple[str, str], str] | None = None,
) -> Settings:
    """Build the validated settings for one deployment.

    `config` is a YAML path, a dict shaped like the YAML, a Settings (returned as is), or
    None to use the file named by NBFLASK_CONFIG. `overrides` are CLI flags, applied last.
    """
    if isinstance(config, Settings):
        return config
    environ = os.environ if environ is None else environ
    layers = _Layers()
    source: str | None = None
    if config is None and environ.get(ENV_CONFIG):
        config = environ[ENV_CONFIG]
    if isinstance(config, Mapping):
        layers.add(config, "config")
    elif config is not None:
        source = str(config)
        layers.add(read_yaml(config), source)
    for data, origin in environment_layer(environ).values():
        layers.add(data, origin)
    if overrides:
        for section, entries in overrides.items():
            for key, value in entries.items():
                where = (override_origins or {}).get((section, key), "command line")
                layers.add({section: {key: value}}, where)
    settings = dataclasses.replace(layers.build(), source=source)
    return check(settings, layers.origin)
