"""The one exception that ends an API request with a status and a message.

Kept free of Flask so the layers below the blueprints (the kernel host process among them)
raise it without importing the web stack; `nbflask.errors` turns it into JSON.
"""

from __future__ import annotations


class APIError(Exception):
    """An error the API answers with `status` and `{"message", "reason"}`."""

    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
