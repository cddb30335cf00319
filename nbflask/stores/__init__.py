"""Notebook stores, chosen in YAML by `store.class`."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ..config import ConfigError, StoreSettings
from .base import Store

BUILTIN = {
    "file": "nbflask.stores.file:FileStore",
    "memory": "nbflask.stores.memory:MemoryStore",
    "swift": "nbflask.stores.swift:SwiftStore",
}

#: Built-in stores whose client library is an optional extra of the package.
EXTRAS = {"swift"}


def store_class(name: str) -> type[Store]:
    """Resolve `file`, `memory`, `swift` or `package.module:Class` to a Store subclass."""
    target = BUILTIN.get(name, name)
    module_name, _, attr = target.partition(":")
    if not attr:
        raise ConfigError(
            f"store.class: expected file, memory, swift or package.module:Class, found {name!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f" (install it with: pip install 'nbflask[{name}]')" if name in EXTRAS else ""
        raise ConfigError(f"store.class: cannot import '{module_name}' for {name!r}: {exc}{hint}") from None
    cls = getattr(module, attr, None)
    if not isinstance(cls, type) or not issubclass(cls, Store):
        raise ConfigError(
            f"store.class: {name!r} is not a store: expected a subclass of nbflask.stores.base.Store"
        )
    if getattr(cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise ConfigError(f"store.class: {name!r} does not implement the store contract: missing {missing}")
    return cls


def open_store(settings: StoreSettings, source: str | None = None) -> Store:
    """Build the configured store, turning its option errors into one ConfigError line.

    `root_dir` is a typed setting of its own (the CLI's --root-dir sets it); it is handed to
    the stores whose constructor takes a `root_dir` argument and ignored by the others.
    """
    cls = store_class(settings.class_name)
    options: dict[str, Any] = dict(settings.options)
    if "root_dir" in inspect.signature(cls).parameters:
        options.setdefault("root_dir", settings.root_dir)
    try:
        # The swift store's options are typed settings, checked when the settings were loaded.
        return cls(settings.swift) if settings.swift is not None else cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source or 'config'}: store ({settings.class_name}): {exc}") from None
