"""The session registry inside the kernel host: which notebook (path) uses which kernel.

Kept next to the kernels so every worker sees the same sessions. Follows Jupyter Server:
creating a session for a path that has one returns it, changing a session's kernel shuts the
old kernel down (when no other session uses it), and deleting a session stops its kernel.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ..api_error import APIError
from .manager import KernelManager


@dataclass
class Session:
    session_id: str
    path: str
    name: str
    type: str
    kernel_id: str


class SessionRegistry:
    def __init__(self, kernels: KernelManager) -> None:
        self.kernels = kernels
        self.sessions: dict[str, Session] = {}
        kernels.on_shutdown.append(self._forget_kernel)

    def model(self, session: Session) -> dict[str, Any]:
        return {
            "id": session.session_id,
            "path": session.path,
            "name": session.name,
            "type": session.type,
            "kernel": self.kernels.get(session.kernel_id).model(),
            "notebook": {"path": session.path, "name": session.name},
        }

    def get(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise APIError(404, f"Session not found: {session_id}")
        return session

    def list(self) -> list[dict[str, Any]]:
        return [self.model(session) for session in list(self.sessions.values())]

    def _kernel_for(self, kernel: dict[str, Any], path: str) -> str:
        """The id of the kernel asked for: an existing one by id, or a new one by name."""
        if kernel.get("id"):
            return self.kernels.get(str(kernel["id"])).kernel_id
        try:
            return self.kernels.start(kernel.get("name"), path).kernel_id
        except APIError as exc:
            if exc.reason == "NoSuchKernel":
                raise APIError(501, f"The '{kernel.get('name')}' kernel is not available. Please pick"
                                     " another suitable kernel instead, or install that kernel.",
                                "NoSuchKernel") from None
            raise

    def create(self, path: str, name: str, type: str, kernel: dict[str, Any]) -> dict[str, Any]:
        for session in self.sessions.values():
            if session.path == path and session.kernel_id in self.kernels.kernels:
                return self.model(session)
        kernel_id = self._kernel_for(kernel, path)
        session = Session(str(uuid.uuid4()), path, name, type, kernel_id)
        self.sessions[session.session_id] = session
        return self.model(session)

    def update(self, session_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        session = self.get(session_id)
        for key in ("path", "name", "type"):
            if isinstance(changes.get(key), str):
                setattr(session, key, changes[key])
        kernel = changes.get("kernel")
        if isinstance(kernel, dict) and (kernel.get("id") or kernel.get("name")):
            old_id = session.kernel_id
            current = self.kernels.kernels.get(old_id)
            same_name = current is not None and kernel.get("name") in (None, current.spec.name)
            if kernel.get("id") != old_id and not (not kernel.get("id") and same_name):
                session.kernel_id = self._kernel_for(kernel, session.path)
                in_use = any(other.kernel_id == old_id for other in self.sessions.values())
                if not in_use and old_id in self.kernels.kernels:
                    self.kernels.shutdown(old_id)
        return self.model(session)

    def delete(self, session_id: str) -> None:
        session = self.get(session_id)
        del self.sessions[session_id]
        if session.kernel_id in self.kernels.kernels and not any(
            other.kernel_id == session.kernel_id for other in self.sessions.values()
        ):
            self.kernels.shutdown(session.kernel_id)

    def _forget_kernel(self, kernel_id: str) -> None:
        for session_id, session in list(self.sessions.items()):
            if session.kernel_id == kernel_id:
                del self.sessions[session_id]
