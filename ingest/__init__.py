"""ingest: tail the hook's JSONL file into Redis. One public entry: run(settings, redis, stop)."""

from .main import run
from .settings import Settings

__all__ = ("Settings", "run")
