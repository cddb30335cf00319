"""The session registry inside the kernel host: which notebook (path) uses which kernel.

Kept next to the kernels so every worker sees the same sessions. Follows Jupyter Server:
creating a session for a path that has one returns it, changing a session's kernel shuts the
old kernel down, and deleting a session stops its kernel. Unlike Jupyter, a kernel that
another session still uses is left running in both cases. The service host records each
kernel's sessions in its connection file, and a service host that adopts the kernel restores them.
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
        kernels.sessions_of = self._records_of

    def _records_of(self, kernel_id: str) -> list[dict[str, Any]]:
        return [{"id": s.session_id, "path": s.path, "name": s.name, "type": s.type}
                for s in self.sessions.values() if s.kernel_id == kernel_id]

    def restore(self) -> None:
        """The sessions of the kernels the host adopted, as their connection files kept them."""
        for record in self.kernels.adopted_sessions:
            fields = [record.get(key) for key in ("id", "path", "name", "type", "kernel_id")]
            if all(isinstance(value, str) for value in fields) and fields[4] in self.kernels.kernels:
                self.sessions[fields[0]] = Session(*fields)
        self.kernels.adopted_sessions = []

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

    def paths_of(self, kernel_id: str) -> list[str]:
        """The notebooks kernel `kernel_id` runs for."""
        return [session.path for session in self.sessions.values() if session.kernel_id == kernel_id]

    def list(self) -> list[dict[str, Any]]:
        return [self.model(session) for session in list(self.sessions.values())]

    def _start_kernel(self, name: str | None, path: str, kernel_id: str | None = None) -> str:
        """The id of a kernel of spec `name` (or the one running under `kernel_id`) for `path`.

        An unknown kernelspec is a 501 here, as in Jupyter Server's sessions API.
        """
        try:
            return self.kernels.start(name, path, kernel_id).kernel_id
        except APIError as exc:
            if exc.reason == "NoSuchKernel":
                raise APIError(501, f"The '{name}' kernel is not available. Please pick another"
                                    " suitable kernel instead, or install that kernel.",
                               "NoSuchKernel") from None
            raise

    def create(self, path: str, name: str, type: str, kernel: dict[str, Any]) -> dict[str, Any]:
        """The session of `path` if it has one, else a new one on the kernel asked for: the
        running kernel `kernel["id"]`, else a new kernel of spec `kernel["name"]` (under the id
        `kernel["id"]` if the client chose one that no kernel has yet)."""
        for session in self.sessions.values():
            if session.path == path and session.kernel_id in self.kernels.kernels:
                return self.model(session)
        kernel_id = self._start_kernel(kernel.get("name"), path, kernel.get("id"))
        session = Session(str(uuid.uuid4()), path, name, type, kernel_id)
        self.sessions[session.session_id] = session
        self.kernels.record_sessions(kernel_id)
        return self.model(session)

    def update(self, session_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Rename or retype a session, or move it to another kernel.

        `kernel["id"]` moves it to that running kernel (400 if there is none, as in Jupyter);
        else `kernel["name"]` starts a new kernel of that spec, even the current one's. The old
        kernel is shut down unless another session uses it. Nothing changes if that fails.
        """
        session = self.get(session_id)
        kernel = changes.get("kernel") or {}
        old_id = new_id = session.kernel_id
        path = changes.get("path") or session.path
        if kernel.get("id"):
            if kernel["id"] not in self.kernels.kernels:
                raise APIError(400, f"No such kernel: {kernel['id']}", "NoSuchKernel")
            new_id = kernel["id"]
        elif kernel.get("name"):
            new_id = self._start_kernel(kernel["name"], path)
            if self.sessions.get(session_id) is not session:  # deleted while the kernel started
                self.kernels.shutdown(new_id)
                raise APIError(404, f"Session not found: {session_id}")
        for key in ("path", "name", "type"):
            if isinstance(changes.get(key), str):
                setattr(session, key, changes[key])
        session.kernel_id = new_id
        if new_id != old_id:
            self._release(old_id)
        self.kernels.record_sessions(old_id)
        self.kernels.record_sessions(new_id)
        return self.model(session)

    def delete(self, session_id: str) -> None:
        session = self.get(session_id)
        del self.sessions[session_id]
        self._release(session.kernel_id)
        self.kernels.record_sessions(session.kernel_id)

    def _release(self, kernel_id: str) -> None:
        """Shut a kernel down that no session uses any more (unless it is gone already)."""
        in_use = any(session.kernel_id == kernel_id for session in self.sessions.values())
        if not in_use and kernel_id in self.kernels.kernels:
            self.kernels.shutdown(kernel_id)

    def _forget_kernel(self, kernel_id: str) -> None:
        for session_id, session in list(self.sessions.items()):
            if session.kernel_id == kernel_id:
                del self.sessions[session_id]
