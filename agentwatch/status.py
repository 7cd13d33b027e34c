"""agentwatch status: every ingest source on a Redis, its host, its lease, its last commit and how far behind it is."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from contract import (
    DEFAULT_REDIS_URL,
    Keys,
    OneLineParser,
    SettingsError,
    add_connection_arguments,
    check_connection,
    safe_url,
)
from contract.connect import redis_client
from contract.sources import read_sources
from ingest.settings import default_host

PROG = "agentwatch status"


async def sources(redis_url: str, prefix: str) -> list[dict[str, Any]]:
    """The relay's /stats `sources`, with the lag measured on the file itself where it is on this machine."""
    redis = redis_client(redis_url, socket_connect_timeout=5, socket_timeout=10)
    try:
        keys = Keys.for_url(prefix, redis_url)
        rows = await read_sources(redis, keys)
        here = default_host()
        for row in rows:
            if row["host"] == here and row["path"] and row["offset"] is not None:
                dev, ino = await redis.hmget(keys.checkpoint(row["source"]), ["dev", "ino"])
                row["lag_bytes"] = _local_lag(row["path"], dev, ino, row["offset"])
    finally:
        await redis.aclose()
    return rows


def _local_lag(path: str, dev: bytes | str | None, ino: bytes | str | None, offset: int) -> int | None:
    """Bytes of the file past the checkpoint; None when the file there is no longer the checkpoint's."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if (str(st.st_dev), str(st.st_ino)) != (_str(dev), _str(ino)):
        return None  # rotated or replaced since: what is left of the old one is not known here
    return max(0, st.st_size - offset)


def _str(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def render(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no sources: no ingest has run against this Redis and prefix"
    table = [("SOURCE", "HOST", "LEASE", "LAST COMMIT", "LAG")]
    table += [(r["source"], r["host"] or "?", _lease(r), _ago(r["last_commit_s_ago"]), _lag(r)) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)), row[4]]) for row in table)


def _lease(row: dict[str, Any]) -> str:
    left = row["expires_in_s"]
    if row["lease"] == "held":
        return f"held by {row['owner']}, expires in {left:.0f}s"
    if row["lease"] == "released":
        return f"released (stopped), its agents end in {left:.0f}s"
    return "expired" if left is None else f"expired {_duration(-left)} ago"


def _ago(seconds: float | None) -> str:
    return "never" if seconds is None else f"{_duration(seconds)} ago"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _lag(row: dict[str, Any]) -> str:
    return "unknown" if row["lag_bytes"] is None else f"{row['lag_bytes']} bytes"


def main(argv: Sequence[str]) -> int:
    parser = OneLineParser(prog=PROG, description="Show every ingest source, its lease, last commit and lag.")
    add_connection_arguments(parser, DEFAULT_REDIS_URL, "Redis to read (AGENTWATCH_REDIS_URL)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    ns = parser.parse_args(argv)
    try:
        check_connection(ns.redis_url, ns.prefix)
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        rows = asyncio.run(sources(ns.redis_url, ns.prefix))
    except (RedisError, OSError) as exc:
        print(f"{PROG}: cannot read Redis at {safe_url(ns.redis_url)} ({exc})", file=sys.stderr)
        return 1
    print(json.dumps(rows, indent=1) if ns.json else render(rows))
    return 0
