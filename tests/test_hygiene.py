"""Shared-Redis hygiene: a Redis that may evict our keys is said in one line, before anything is lost."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from contract.hygiene import eviction_warning
from tests.stack import RedisServer


@pytest.mark.parametrize(("policy", "warned"), [("allkeys-lru", True), ("noeviction", False), ("volatile-lru", False)])
async def test_an_evicting_redis_is_reported(policy: str, warned: bool) -> None:
    server = RedisServer(extra=("--maxmemory", "64mb", "--maxmemory-policy", policy))
    server.start()
    client = Redis.from_url(server.url)
    try:
        warning = await eviction_warning(client)
    finally:
        await client.aclose()
        server.close()
    assert (warning is not None) == warned
    if warning is not None:
        assert policy in warning and "noeviction" in warning and "\n" not in warning
