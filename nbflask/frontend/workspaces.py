"""JupyterLab workspaces (the layout of open tabs and panels), saved per user.

A workspace is `{"data": {...}, "metadata": {"id": name, ...}}`; the front-end saves the
current one as the user works and reads it back on load, so a reload reopens the same tabs.
"""

from __future__ import annotations

import json
from typing import Any

from ..api_error import APIError
from ..clock import isoformat, utcnow
from .userstate import UserState

KIND = "workspaces"
#: A workspace's size as saved. JupyterLab's hold the layout and a few paths per open tab (a
#: few KiB); every page load and listing reads them back.
MAX_WORKSPACE_BYTES = 4 * 1024 * 1024


def _blank(name: str) -> dict[str, Any]:
    return {"data": {}, "metadata": {"id": name}}


class Workspaces:
    def __init__(self, state: UserState) -> None:
        self.state = state

    def get(self, name: str) -> dict[str, Any]:
        """The saved workspace, or an empty one (a new name is not an error)."""
        saved = self.state.get(KIND, name)
        if saved is None:
            return _blank(name)
        try:
            return json.loads(saved)
        except ValueError:
            return _blank(name)

    def list(self) -> dict[str, Any]:
        names = self.state.names(KIND)
        return {"ids": names, "values": [self.get(name) for name in names]}

    def save(self, name: str, workspace: Any) -> None:
        """Keep a workspace whose metadata names it; APIError 400 otherwise."""
        if not isinstance(workspace, dict) or not isinstance(workspace.get("data", {}), dict):
            raise APIError(400, "a workspace is a JSON object with a 'data' object and a 'metadata' object")
        metadata = workspace.get("metadata")
        if not isinstance(metadata, dict):
            raise APIError(400, "a workspace needs a 'metadata' object with its 'id'")
        given = str(metadata.get("id", "")).lstrip("/")
        if given != name:
            raise APIError(400, f"workspace metadata id {given!r} does not match the URL's {name!r}")
        previous = self.get(name)["metadata"]
        now = isoformat(utcnow())
        metadata = {**metadata, "id": name, "created": previous.get("created", now), "last_modified": now}
        body = {**workspace, "data": workspace.get("data", {}), "metadata": metadata}
        text = json.dumps(body)
        if len(text) > MAX_WORKSPACE_BYTES:  # ASCII (json.dumps escapes the rest): one byte a character
            raise APIError(413, f"workspace {name!r} too large: {len(text)} bytes, the limit is"
                                f" {MAX_WORKSPACE_BYTES}", "too large")
        self.state.put(KIND, name, text.encode("utf-8"))

    def delete(self, name: str) -> None:
        if not self.state.delete(KIND, name):
            raise APIError(404, f"no workspace named {name!r}")
