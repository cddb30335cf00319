"""The layer between the contents blueprints and the stores: REST models, notebooks, trust."""

from .service import Contents, IfMatch, Reply
from .trust import Trust

__all__ = ["Contents", "IfMatch", "Reply", "Trust"]
