"""Checks of a shared Redis that both ingest and relay make at start-up, each said in one line."""

from __future__ import annotations

from typing import Any

# Policies under which Redis may evict any key, ours included: a silent hole in the alive set or the log.
EVICTING = ("allkeys-lru", "allkeys-lfu", "allkeys-random")


async def eviction_warning(redis: Any) -> str | None:
    """A one-line warning when Redis may evict our keys; None when it cannot (or we may not ask).

    Reads INFO memory, which a user restricted to our prefix may run where CONFIG GET is refused."""
    try:
        info = await redis.info("memory")
    except Exception:  # noqa: BLE001 - no permission, or not there: nothing to say
        return None
    policy = str(info.get("maxmemory_policy", "")) if isinstance(info, dict) else ""
    if policy not in EVICTING:
        return None
    return (
        f"Redis maxmemory-policy is {policy}: under memory pressure it may evict agentwatch's keys (the alive set, "
        "the log, checkpoints) and viewers would miss what was in them; set it to noeviction or a volatile-* policy "
        "(CONFIG SET maxmemory-policy noeviction) or give agentwatch a Redis of its own"
    )
