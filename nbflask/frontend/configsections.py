"""`/api/config/<section>`: small JSON documents front-ends keep per user (`notebook`,
`common`, ...). PATCH merges into what is saved: nested objects merge, a null value removes
its key, anything else replaces, so two tabs patching different keys do not undo each other.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..api_error import APIError
from .userstate import UserState

KIND = "config"
SECTION_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: A section's size as saved. Jupyter's own are a few hundred bytes; every page load reads
#: them, so one that grew without bound (PATCH after PATCH) would cost every load its parse.
MAX_CONFIG_BYTES = 1024 * 1024


def merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`patch` merged into a copy of `target` (null deletes)."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class ConfigSections:
    def __init__(self, state: UserState) -> None:
        self.state = state

    def _check(self, section: str, value: Any = None) -> None:
        if not SECTION_NAME.fullmatch(section):
            raise APIError(400, f"invalid config section name {section!r}: letters, digits, '_' and '-' only")
        if value is not None and not isinstance(value, dict):
            raise APIError(400, f"config section {section!r} must be a JSON object")

    def get(self, section: str) -> dict[str, Any]:
        self._check(section)
        saved = self.state.get(KIND, section)
        try:
            value = json.loads(saved) if saved is not None else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def replace(self, section: str, value: Any) -> dict[str, Any]:
        self._check(section, value)
        try:  # Python's json reads NaN and Infinity; JSON has no such numbers and pages cannot read them
            text = json.dumps(value, allow_nan=False)
        except ValueError:
            raise APIError(400, f"config section {section!r}: NaN and Infinity are not JSON numbers",
                           "bad json") from None
        if len(text) > MAX_CONFIG_BYTES:  # ASCII (json.dumps escapes the rest): one byte a character
            raise APIError(413, f"config section {section!r} too large: {len(text)} bytes, the limit is"
                                f" {MAX_CONFIG_BYTES}", "too large")
        self.state.put(KIND, section, text.encode("utf-8"))
        return value

    def update(self, section: str, patch: Any) -> dict[str, Any]:
        self._check(section, patch)
        return self.replace(section, merge(self.get(section), patch))
