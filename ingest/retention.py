"""The retained window: the log, its keyframes and the timeline cut by time, and by bytes when they reach a
ceiling. Every ingest runs it about once a minute; cutting twice is harmless.

The window always starts at a keyframe K (the alive set after seq K) with every envelope after it kept, so the
state at any seq in the window is K plus the envelopes up to that seq (relay/replay.py). Cutting by time keeps
the last keyframe at or before `now - retention`; the byte ceiling, when reached, moves the start to a later
keyframe, so that what is left is about 80% of the ceiling, and says so (meta `trimmed: bytes`, a warning).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from contract import META_TRIMMED, META_TRIMMED_AT, Keys

log = logging.getLogger("ingest")

# KEYS: meta, log, keyframes, keyframe_times, marks, timeline. ARGV: start keyframe seq, its time (ms), how
# (time|bytes), the first timeline minute to keep.
TRIM_LUA = f"""
local unpack = unpack or table.unpack
local start, start_ts = tonumber(ARGV[1]), tonumber(ARGV[2])
local before = redis.call('XLEN', KEYS[2])
redis.call('XTRIM', KEYS[2], 'MINID', start + 1)
redis.call('XTRIM', KEYS[3], 'MINID', start .. '-1')
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. start_ts)
redis.call('XTRIM', KEYS[5], 'MINID', start + 1)
local first = tonumber(ARGV[4])
local old = {{}}
for _, name in ipairs(redis.call('HKEYS', KEYS[6])) do
  if tonumber(string.match(name, '^(%d+)')) < first then old[#old + 1] = name end
  if #old >= 512 then redis.call('HDEL', KEYS[6], unpack(old)); old = {{}} end
end
if #old > 0 then redis.call('HDEL', KEYS[6], unpack(old)) end
local clock = redis.call('TIME')
redis.call('HSET', KEYS[1], '{META_TRIMMED}', ARGV[3], '{META_TRIMMED_AT}', tonumber(clock[1]) * 1000)
return before - redis.call('XLEN', KEYS[2])
"""


@dataclass(frozen=True)
class Trimmed:
    start: int  # the keyframe seq the window starts at
    removed: int  # envelopes removed from the log
    how: str  # "time" or "bytes"
    used_bytes: int  # what the log and keyframes took before


class Retention:
    def __init__(self, redis: Redis, keys: Keys, retention_s: float, max_bytes: int) -> None:
        self.redis = redis
        self.keys = keys
        self.retention_ms = int(retention_s * 1000)
        self.max_bytes = max_bytes
        self._trim = redis.register_script(TRIM_LUA)

    async def run(self) -> Trimmed | None:
        """Cut the window once; None when there was nothing to cut."""
        seconds, micros = await self.redis.time()
        now = int(seconds) * 1000 + int(micros) // 1000
        start = await self._keyframe_before(now - self.retention_ms)
        how = "time"
        used = await self.used_bytes() if self.max_bytes else 0
        if self.max_bytes and used > self.max_bytes:
            later = await self._keyframe_for_bytes(used)
            if later is not None and (start is None or later[0] > start[0]):
                start, how = later, "bytes"
        if start is None:
            return None
        keys = self.keys
        names = [keys.meta, keys.log, keys.keyframes, keys.keyframe_times, keys.marks, keys.timeline]
        removed = int(await self._trim(keys=names, args=[start[0], start[1], how, start[1] // 60_000]))
        if how == "bytes":
            log.warning(
                "retention: the log and keyframes took %d bytes, over --retention-max-bytes %d: the replay "
                "window now starts at seq %d (less than --retention); %d envelopes removed",
                used,
                self.max_bytes,
                start[0],
                removed,
            )
        return Trimmed(start[0], removed, how, used)

    async def _keyframe_before(self, ts: int) -> tuple[int, int] | None:
        """The last keyframe written at or before `ts`: (seq, time)."""
        found: list[Any] = await self.redis.zrevrangebyscore(
            self.keys.keyframe_times, ts, "-inf", start=0, num=1, withscores=True
        )
        return (int(found[0][0]), int(found[0][1])) if found else None

    async def _keyframe_for_bytes(self, used: int) -> tuple[int, int] | None:
        """The first keyframe after which the log is at most 80% of the ceiling, assuming bytes spread evenly
        over the seqs; None when only the newest keyframe would do and it is already the start."""
        first, last = await self._log_bounds()
        if first is None or last is None or last <= first:
            return None
        keep = (last - first) * 0.8 * self.max_bytes / used
        want = int(last - keep)
        entries: list[Any] = await self.redis.zrangebyscore(self.keys.keyframe_times, "-inf", "+inf", withscores=True)
        keyframes = sorted((int(seq), int(ts)) for seq, ts in entries)
        later = [k for k in keyframes if k[0] >= want]
        return later[0] if later else (keyframes[-1] if keyframes else None)

    async def _log_bounds(self) -> tuple[int | None, int | None]:
        head: Any = await self.redis.xrange(self.keys.log, "-", "+", count=1)
        tail: Any = await self.redis.xrevrange(self.keys.log, "+", "-", count=1)
        return (_seq(head[0][0]) if head else None, _seq(tail[0][0]) if tail else None)

    async def used_bytes(self) -> int:
        """What the log and keyframes take in Redis: MEMORY USAGE (sampled), or an estimate from their newest
        entries where the command is missing (the embedded Redis)."""
        total = 0
        for key in (self.keys.log, self.keys.keyframes):
            try:
                total += int(await self.redis.memory_usage(key, samples=10) or 0)
            except (ResponseError, AttributeError, NotImplementedError):
                total += await self._estimate(key)
        return total

    async def _estimate(self, key: str) -> int:
        length = int(await self.redis.xlen(key))
        if not length:
            return 0
        newest: Any = await self.redis.xrevrange(key, "+", "-", count=10)
        sizes = [sum(len(k) + len(v) for k, v in fields.items()) + 16 for _, fields in newest]
        return length * sum(sizes) // len(sizes)


def _seq(entry_id: Any) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])
