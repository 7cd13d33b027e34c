"""Shared-Redis hygiene: a Redis that may evict our keys is said in one line, before anything is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from contract.hygiene import eviction_warning
from tests.stack import RedisServer, start_ingest, start_relay


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


@pytest.mark.reliability(
    "Team scale",
    "a Redis that may evict our keys",
    injected="ingest and relay started on a redis-server with maxmemory-policy allkeys-lru",
    checked="each says so in one line at start-up, naming the policy and the fix",
)
def test_ingest_and_relay_warn_about_an_evicting_redis(events_file: Path, prefix: str) -> None:
    server = RedisServer(extra=("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"))
    server.start()
    events_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        ingest = start_ingest(server.url, events_file, prefix)
        relay, _ = start_relay(server.url, prefix)
        try:
            for proc in (ingest, relay):
                line = proc.wait_line("maxmemory-policy is allkeys-lru", timeout=15)
                assert "noeviction" in line
        finally:
            relay.stop()
            ingest.stop()
    finally:
        server.close()
