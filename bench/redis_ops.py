"""Redis commands run during a measured window, from INFO commandstats on the bench's own redis-server.

Commands a Lua script runs (ingest commits in one EVALSHA) are counted one by one there, as they cost the
server; the INFO asked here is left out. The capacity table divides the total by the events of the window.
"""

from __future__ import annotations

from typing import Any

from tests.stack import RedisServer

OWN = ("info",)  # what measuring asks


def parse(text: str) -> dict[str, int]:
    """'cmdstat_xadd:calls=12,usec=...' lines -> {"xadd": 12, ...}."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        if not line.startswith("cmdstat_"):
            continue
        name, _, fields = line[len("cmdstat_") :].partition(":")
        for field in fields.split(","):
            key, _, value = field.partition("=")
            if key == "calls":
                out[name] = int(value)
    return out


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Calls per command between two readings, without measuring's own, biggest first; zeros left out."""
    changed = {name: calls - before.get(name, 0) for name, calls in after.items() if name not in OWN}
    return dict(sorted(((k, v) for k, v in changed.items() if v > 0), key=lambda kv: -kv[1]))


def read(redis: Any) -> dict[str, int] | None:
    """The server's counters now; None for a target other than one redis-server (a Cluster spreads them)."""
    if not isinstance(redis, RedisServer):
        return None
    return parse(redis.cli("INFO", "commandstats"))


def per_event(calls: dict[str, int], events: int) -> dict[str, Any]:
    total = sum(calls.values())
    return {
        "commands": total,
        "events": events,
        "per_event": round(total / events, 3) if events else None,
        "by_command": calls,
    }
