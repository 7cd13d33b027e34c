"""The ingest sources on a shared Redis, as `agentwatch status` and the relay's /stats show them.

Ingest writes these fields into each source's checkpoint hash; both the CLI and the relay read them here,
since the relay never imports ingest.
"""

from __future__ import annotations

from typing import Any

from . import Keys

# The checkpoint fields that describe a source: the host whose file it is, the lease (owner "host:pid:nonce", and
# when it expires, in Redis' clock), the last commit (Redis' clock), the offset and the file's size at the last
# heartbeat.
SOURCE_FIELDS = ("host", "path", "owner", "expires", "committed", "off", "size")


def source_status(source: str, values: list[str | None], now_ms: int) -> dict[str, Any]:
    """One source as `agentwatch status --json` and the relay's /stats show it; now_ms is Redis' TIME."""
    f = dict(zip(SOURCE_FIELDS, values, strict=True))
    owner = f["owner"] or None
    expires, committed, off, size = (_int(f[name]) for name in ("expires", "committed", "off", "size"))
    lease = "expired" if expires is None or expires <= now_ms else "held" if owner else "released"
    return {
        "source": source,
        "host": f["host"] or (owner.rsplit(":", 2)[0] if owner else None),
        "path": f["path"],
        "lease": lease,  # held; released (stopped cleanly, its agents end when it expires); expired
        "owner": owner,
        "expires_in_s": None if expires is None else round((expires - now_ms) / 1000, 1),  # < 0: expired since
        "last_commit_s_ago": None if committed is None else round((now_ms - committed) / 1000, 1),
        "offset": off,
        # Bytes behind, as of the owner's last heartbeat; unknown unless the lease is held.
        "lag_bytes": max(0, size - off) if lease == "held" and size is not None and off is not None else None,
    }


async def read_sources(redis: Any, keys: Keys) -> list[dict[str, Any]]:
    """Every source's status, read from Redis (an asyncio client), in name order."""
    seconds, micros = await redis.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    names = sorted(_text(n) for n in await redis.smembers(keys.sources))
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hmget(keys.checkpoint(name), SOURCE_FIELDS)
        rows = await pipe.execute()
    return [
        source_status(name, [None if v is None else _text(v) for v in row], now_ms)
        for name, row in zip(names, rows, strict=True)
        if any(v is not None for v in row)  # a reaped checkpoint expires after days: gone from the list
    ]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
