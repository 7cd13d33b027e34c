"""One atomic Redis call per batch: events, alive set, seq, stream, publish and checkpoint move together.

The checkpoint is compared-and-set on the previous position, so a crash leaves all or nothing applied, and
the source's lease is checked in the same call (fencing), so a writer that lost its lease publishes nothing.
No file IO here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from contract import (
    LOG_FIELD,
    MARK_FIELD,
    META_EPOCH,
    META_KEYFRAME_EPOCH,
    META_KEYFRAME_SEQ,
    META_KEYFRAME_TS,
    META_REPLID,
    META_SEQ,
    Keys,
)

from .timeline import Timeline

PUBLISH_CHUNK = 512 * 1024  # bytes of envelopes per channel message; the relay refuses messages over 4 MiB

# Redis' clock in ms: leases and commit times never depend on a machine's clock.
NOW_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# Shared by every script that publishes (the commit, the reaper): KEYS[1] meta, KEYS[3] log, ARGV[2] a fresh
# epoch candidate. Sets `epoch` (the one to publish under) and `fresh` (why it is new, 0 when it is not).
EPOCH_CHECKS_LUA = f"""
local epoch = redis.call('HGET', KEYS[1], '{META_EPOCH}')
local fresh = 0
if not epoch then
  -- Redis lost our state (restart without persistence, FLUSHALL): a new epoch voids every old seq.
  epoch = ARGV[2]
  fresh = 1
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[1], '{META_EPOCH}', epoch, '{META_SEQ}', 0)
end
-- Failover or restart (a new master_replid): what viewers were sent may be gone and its seqs reused, so a
-- new epoch resets them all once, instead of a rollback hiding inside the old epoch. INFO may be denied by
-- an ACL (then this check is off).
local info = redis.pcall('INFO', 'replication')
if type(info) == 'string' then
  local replid = string.match(info, 'master_replid:(%w+)')
  if replid then
    local known = redis.call('HGET', KEYS[1], '{META_REPLID}')
    if known and known ~= replid and fresh == 0 then
      epoch = ARGV[2]
      fresh = 2
      redis.call('HSET', KEYS[1], '{META_EPOCH}', epoch)
    end
    if known ~= replid then redis.call('HSET', KEYS[1], '{META_REPLID}', replid) end
  end
end
-- The log ahead of seq: seq went back without the log (a partial restore, a hand edit). New entries would
-- collide with old ones (XADD refuses ids at or below the top): a new epoch and a new log, before any write.
local top = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)[1]
if top and tonumber(string.match(top[1], '^(%d+)')) > tonumber(redis.call('HGET', KEYS[1], '{META_SEQ}') or '0') then
  epoch = ARGV[2]
  fresh = 3
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[1], '{META_EPOCH}', epoch)
end
"""

# Appends the events `events[i .. i+n-1]` (JSON data) under `epoch`: seq, log (KEYS[3], capped at ARGV[3]) and
# the channel (KEYS[4]), in the envelope format envelope_prefix() describes. The channel gets one message per
# commit (up to PUBLISH_CHUNK bytes each): the envelope alone, or a JSON array of them in seq order, so that
# a batch costs Redis and every relay one message instead of one per event.
PUBLISH_LUA = f"""
local cap = tonumber(ARGV[3])
local seq = redis.call('HINCRBY', KEYS[1], '{META_SEQ}', n) - n
local head = '{{"type":"event","seq":'
local mid = ',"epoch":"' .. epoch .. '","data":'
local out, size = {{}}, 0
for j = 0, n - 1 do
  seq = seq + 1
  local env = head .. seq .. mid .. events[i + j] .. '}}'
  if cap > 0 then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', cap, seq .. '-0', '{LOG_FIELD}', env)
  else  -- no count cap: the retained window is cut by time and bytes (ingest/retention.py)
    redis.call('XADD', KEYS[3], seq .. '-0', '{LOG_FIELD}', env)
  end
  out[#out + 1] = env
  size = size + #env
  if size >= {PUBLISH_CHUNK} or j == n - 1 then
    redis.call('PUBLISH', KEYS[4], #out == 1 and out[1] or '[' .. table.concat(out, ',') .. ']')
    out, size = {{}}, 0
  end
end
"""


def for_keys(script: str, keys: Keys) -> str:
    """A publishing script as `keys` need it: on a Cluster it publishes with SPUBLISH, in the channel's shard
    (the channel is one of its keys, in the prefix's slot), where the relay subscribes."""
    return script.replace("redis.call('PUBLISH',", f"redis.call('{keys.publish}',")


# The replay window (before this commit's writes): keyframes and marks belong to one epoch. At the first commit
# of an epoch they start again, with a keyframe of the alive hash as it is before this commit, so the window
# opens at the epoch's first seq. An entry id at or below a stream's top would be refused mid-script (seqs went
# back without the log noticing): that stream starts again instead. Keyframe ids are "<seq>-1" (a stream id
# cannot be 0-0, and seq 0 is an empty start).
WINDOW_OPEN_LUA = f"""
local function append(key, id, sub, ...)
  local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
  if top and tonumber(string.match(top[1], '^(%d+)')) >= id then redis.call('DEL', key) end
  redis.call('XADD', key, id .. '-' .. sub, ...)
end
local function keyframe(at)
  local flat = redis.call('HGETALL', KEYS[2])
  local parts = {{}}
  for j = 1, #flat, 2 do parts[#parts + 1] = cjson.encode(flat[j]) .. ':' .. flat[j + 1] end
  append(KEYS[7], at, 1, 'ts', now, 'epoch', epoch, 'alive', '{{' .. table.concat(parts, ',') .. '}}')
  redis.call('ZADD', KEYS[8], now, at)
  redis.call('HSET', KEYS[1], '{META_KEYFRAME_SEQ}', at, '{META_KEYFRAME_TS}', now, '{META_KEYFRAME_EPOCH}', epoch)
end
local kf = redis.call('HMGET', KEYS[1], '{META_KEYFRAME_SEQ}', '{META_KEYFRAME_TS}', '{META_KEYFRAME_EPOCH}')
local kf_seq, kf_ts = tonumber(kf[1] or '-1'), tonumber(kf[2] or '0')
if kf[3] ~= epoch then
  redis.call('DEL', KEYS[7], KEYS[8], KEYS[9], KEYS[10])
  kf_seq, kf_ts = tonumber(redis.call('HGET', KEYS[1], '{META_SEQ}') or '0'), now
  keyframe(kf_seq)
end
"""

# After the events: their marks and counts per minute, and a keyframe every ARGV[6] events or ARGV[7] ms of
# Redis time (the alive hash as it is after this commit's last seq).
WINDOW_LUA = f"""
for j = 1, #marks, 2 do
  append(KEYS[9], seq - n + tonumber(marks[j]) + 1, 0, '{MARK_FIELD}', marks[j + 1])
end
for j = 1, #minutes, 2 do redis.call('HINCRBY', KEYS[10], minutes[j], minutes[j + 1]) end
if seq > kf_seq and (seq - kf_seq >= tonumber(ARGV[6]) or now - kf_ts >= tonumber(ARGV[7])) then
  keyframe(seq)
end
"""

# A list in one argument, each item as `<bytes>:<item>` (pack() below): one argument per group instead of one
# per item, because packing thousands of arguments a commit cost ingest more CPU than parsing its lines.
UNPACK_LUA = """
local function unpacked(blob)
  local out, at, last = {}, 1, #blob
  while at <= last do
    local colon = string.find(blob, ':', at, true)
    local size = tonumber(string.sub(blob, at, colon - 1))
    out[#out + 1] = string.sub(blob, colon + 1, colon + size)
    at = colon + size + 1
  end
  return out
end
"""

# KEYS: meta, alive, log, channel, checkpoint, stats, keyframes, keyframe_times, marks, timeline
# ARGV: expected pos token, epoch candidate, stream cap (0: none), lease owner, lease gen, keyframe every N
#   events, keyframe every T ms, then one packed list each (pack()): checkpoint pairs, checkpoint dels, alive
#   sets (pairs), alive dels, stats increments (pairs), events (JSON data), marks (pairs: index in events,
#   JSON), timeline increments (pairs).
# The lease is the fencing token: a writer whose lease was taken over or reaped (or that holds none while
# someone does) is refused before anything is written.
COMMIT_LUA = f"""
local unpack = unpack or table.unpack
local lease = redis.call('HMGET', KEYS[5], 'owner', 'gen')
if (lease[1] or '') ~= ARGV[4] or (ARGV[4] ~= '' and lease[2] ~= ARGV[5]) then
  return redis.error_reply('FENCED ' .. (lease[1] or ''))
end
local cur = redis.call('HGET', KEYS[5], 'pos') or ''
if cur ~= ARGV[1] then
  return redis.error_reply('STALE ' .. cur)
end
{NOW_LUA}
{EPOCH_CHECKS_LUA}
{WINDOW_OPEN_LUA}
{UNPACK_LUA}
local function each(list, fn)
  for j = 1, #list, 512 do fn(unpack(list, j, math.min(j + 511, #list))) end
end
each(unpacked(ARGV[8]), function(...) redis.call('HSET', KEYS[5], ...) end)
each(unpacked(ARGV[9]), function(...) redis.call('HDEL', KEYS[5], ...) end)
redis.call('HSET', KEYS[5], 'committed', now)
each(unpacked(ARGV[10]), function(...) redis.call('HSET', KEYS[2], ...) end)
each(unpacked(ARGV[11]), function(...) redis.call('HDEL', KEYS[2], ...) end)
local counts = unpacked(ARGV[12])
for j = 1, #counts, 2 do redis.call('HINCRBY', KEYS[6], counts[j], counts[j + 1]) end
local events = unpacked(ARGV[13])
local n, i = #events, 1
local marks, minutes = unpacked(ARGV[14]), unpacked(ARGV[15])
{PUBLISH_LUA}
{WINDOW_LUA}
return {{seq, epoch, fresh}}
"""


# Create the epoch at start-up, so viewers that connect before the first event already share it.
EPOCH_LUA = f"""
if redis.call('HSETNX', KEYS[1], '{META_EPOCH}', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], '{META_SEQ}', 0)
  redis.call('DEL', KEYS[2])
end
return redis.call('HGET', KEYS[1], '{META_EPOCH}')
"""


class Stale(Exception):
    """Someone else moved the checkpoint (another ingest, or Redis lost it): reload before going on."""

    def __init__(self, current: str) -> None:
        super().__init__(f"checkpoint moved: expected our last position, found {current or 'none'}")
        self.current = current


class Fenced(Exception):
    """The source's lease is not ours (any more): nothing was written."""

    def __init__(self, owner: str) -> None:
        super().__init__(f"the lease belongs to {owner or 'nobody'}")
        self.owner = owner


@dataclass(frozen=True)
class Committed:
    seq: int
    epoch: str
    fresh_epoch: bool


@dataclass(frozen=True)
class Keyframes:
    """How often a commit stores the alive set: every `events` envelopes or every `interval_ms` of Redis time."""

    events: int = 2000
    interval_ms: int = 60_000


class Committer:
    def __init__(
        self, redis: Redis, keys: Keys, source: str, stream_cap: int, keyframes: Keyframes = Keyframes()
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.source = source
        self.stream_cap = stream_cap
        self.keyframes = keyframes
        self.lease = ("", "")  # (owner, gen) of the lease this writer holds; ("", "") commits only unleased
        self._script = redis.register_script(for_keys(COMMIT_LUA, keys))
        self._epoch = redis.register_script(EPOCH_LUA)

    async def ensure_epoch(self, candidate: str) -> str:
        return _text(await self._epoch(keys=[self.keys.meta, self.keys.log], args=[candidate]))

    async def load(self) -> dict[str, str]:
        raw: dict[bytes | str, bytes | str] = await self.redis.hgetall(self.keys.checkpoint(self.source))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def alive_records(self) -> list[str]:
        values: list[bytes | str] = await self.redis.hvals(self.keys.alive)
        return [_text(v) for v in values]

    async def commit(
        self,
        expected: str,
        epoch_candidate: str,
        checkpoint: Mapping[str, str],
        events: Sequence[str],
        alive_set: Mapping[str, str],
        alive_del: Sequence[str],
        stats: Mapping[str, int],
        checkpoint_del: Sequence[str] = (),
        timeline: Timeline | None = None,
    ) -> Committed:
        """checkpoint_del: checkpoint fields to delete (the join state is written field by field, as it changes).
        timeline: the replay timeline's marks and per-minute counts for these events."""
        kf = self.keyframes
        args: list[Any] = [expected, epoch_candidate, self.stream_cap, *self.lease, kf.events, kf.interval_ms]
        marks, minutes = (timeline.marks, timeline.minutes) if timeline is not None else ([], {})
        args += (
            pack(x for pair in checkpoint.items() for x in pair),
            pack(checkpoint_del),
            pack(x for pair in alive_set.items() for x in pair),
            pack(alive_del),
            pack(x for pair in stats.items() for x in pair),
            pack(events),
            pack(x for pair in marks for x in pair),
            pack(x for pair in minutes.items() for x in pair),
        )
        names = self.keys
        keys = [
            *(names.meta, names.alive, names.log, names.channel, names.checkpoint(self.source), names.stats),
            *(names.keyframes, names.keyframe_times, names.marks, names.timeline),
        ]
        try:
            seq, epoch, fresh = await self._script(keys=keys, args=args)
        except ResponseError as exc:
            message = str(exc)
            if message.startswith("STALE"):
                raise Stale(message[6:].strip()) from None
            if message.startswith("FENCED"):
                raise Fenced(message[7:].strip()) from None
            raise
        return Committed(int(seq), _text(epoch), bool(fresh))


def pack(items: Iterable[str | int]) -> bytes:
    """A list as one script argument: `<length in bytes>:<item>` each, read back by UNPACK_LUA."""
    parts: list[bytes] = []
    for item in items:
        data = item.encode() if isinstance(item, str) else str(item).encode()
        parts += (b"%d:" % len(data), data)
    return b"".join(parts)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
