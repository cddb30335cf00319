"""The state one app's blueprints share: its settings, token, and the services built for it.

Its own module (not `app.py`) so blueprints import it without importing the factory that
imports them; the factory builds every service and hands it over in one ServerState.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from flask import current_app

from .clock import utcnow
from .config import Settings

if TYPE_CHECKING:
    from .contents import Contents
    from .contents.recorded import RecordedOutputs
    from .frontend.service import FrontendService
    from .host_client import HostClient
    from .stores.base import Store

EXTENSION = "nbflask"


@dataclass
class ServerState:
    """What the blueprints share for one app: settings, the effective token, the services."""

    settings: Settings
    token: str
    store: Store
    contents: Contents
    host: HostClient  # the kernel host: kernels, sessions, cell runs, terminals
    recorded: RecordedOutputs
    frontends: FrontendService
    started: datetime = field(default_factory=utcnow)
    last_activity: datetime = field(default_factory=utcnow)

    def touch(self) -> None:
        self.last_activity = utcnow()

    def close(self) -> None:
        """Stop what this app owns: its kernels first (they may be saving), then the store."""
        self.recorded.stop()
        self.host.close()
        self.store.close()


def state() -> ServerState:
    """The ServerState of the app handling the current request."""
    return current_app.extensions[EXTENSION]
