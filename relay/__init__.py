"""relay: a stateless Starlette WebSocket server over Redis. One public entry: create_app(settings)."""

from .app import create_app
from .settings import Settings

__all__ = ("Settings", "create_app")
