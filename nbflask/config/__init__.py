"""Typed deployment settings: defaults < YAML file < environment < CLI flags.

One frozen object describes a deployment, so every part of the server reads the same
validated values. Every mistake a user can make in a file (unknown key, wrong type, missing
certificate, bad base_url, a Swift option the store cannot use) becomes one `ConfigError`
line naming where the value came from, the key, what was expected and what was found,
instead of a traceback deep in start-up.

- `settings.py`: the sections and their keys, defaults and help lines;
- `layers.py`: `load_settings`, merging the file, the environment and the flags, with types;
- `checks.py`: what each value must be beyond its type, a table of rules;
- `files.py`: profiles, the file `config init` writes, and editing one key of a file.
"""

from .files import default_yaml, profile_path, set_in_file, user_config_dir
from .layers import environment_layer, load_settings, read_yaml
from .settings import (
    ENV_CONFIG,
    ENV_PREFIX,
    MIN_TERMINAL_INPUT_BUFFER,
    SECTIONS,
    AuthSettings,
    ConfigError,
    KernelSettings,
    ServerSettings,
    Settings,
    StoreSettings,
    SwiftSettings,
    TerminalSettings,
    UISettings,
)

__all__ = [
    "ENV_CONFIG",
    "ENV_PREFIX",
    "MIN_TERMINAL_INPUT_BUFFER",
    "SECTIONS",
    "AuthSettings",
    "ConfigError",
    "KernelSettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "SwiftSettings",
    "TerminalSettings",
    "UISettings",
    "default_yaml",
    "environment_layer",
    "load_settings",
    "profile_path",
    "read_yaml",
    "set_in_file",
    "user_config_dir",
]
