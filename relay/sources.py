"""What /stats says about the ingest sources, read from Redis in the background.

/stats must answer within a second on a relay past its capacity, where every Redis round trip takes several
turns of a late event loop: so it shows the sources as read at most REFRESH_S ago, and reads them itself only
until the first background read has landed.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis

from contract import Keys
from contract.sources import read_sources

log = logging.getLogger("relay")

REFRESH_S = 1.0
TIMEOUT_S = 1.0  # a background read may take this long; /stats's own first read only SOURCES_WAIT_S
SOURCES_WAIT_S = 0.3

Sources = list[dict[str, object]]


class SourcesView:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.value: Sources | None = None
        self.read_at = 0.0  # time.monotonic() of the last successful read
        self._failures: set[str] = set()

    async def current(self) -> Sources | None:
        """The sources as last read, within 2 refreshes; else read now (or None: Redis did not answer)."""
        if time.monotonic() - self.read_at <= 2 * REFRESH_S:
            return self.value
        return await self._read(SOURCES_WAIT_S)

    async def keep(self) -> None:
        """Refresh every REFRESH_S, for as long as the relay runs."""
        while True:
            await self._read(TIMEOUT_S)
            await asyncio.sleep(REFRESH_S)

    async def _read(self, wait_s: float) -> Sources | None:
        try:
            async with asyncio.timeout(wait_s):
                value = await read_sources(self.redis, self.keys)
        except Exception as exc:  # /stats still answers with what the relay itself knows
            name = type(exc).__name__
            if name not in self._failures:  # once per kind: monitors poll /stats
                self._failures.add(name)
                log.warning("/stats could not read the sources (%s: %s); it shows sources: null", name, exc)
            return None
        self.value, self.read_at = value, time.monotonic()
        return value


__all__ = ("SourcesView",)
