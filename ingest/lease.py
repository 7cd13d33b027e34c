"""Leases on sources: one live ingest per events file, and nothing left behind by one that is gone.

A source (one machine's events file) is held by one ingest at a time. Its lease lives in the source's
checkpoint hash: `owner` ("host:pid:nonce"), `gen` (bumped at every acquisition: the fencing token the commit
script checks), `expires` (Redis' clock, ms) and `proc` (which process on which machine the owner is), and its
expiry in the `{p}:leases` sorted set. The owner renews every TTL/3. When a lease expires (its ingest died, its
machine left, or it stopped and did not come back within the TTL), any live ingest reaps it: one script ends
that source's alive agents as `lost`, publishes that like a commit, and clears the lease. Every script reads
Redis' TIME, never a machine's clock. See ../shared/reference/team-scale.md §5.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from contract import MAIN_AGENT, Keys

from .commit import EPOCH_CHECKS_LUA, NOW_LUA, PUBLISH_LUA, for_keys

REAP_REASON = "lease_expired"  # the `reason` of the agent_done and session_end events a reap publishes
REAPED_KEEP_S = 7 * 86400  # a reaped source's checkpoint expires after a week unless its ingest comes back

# KEYS: checkpoint, leases, sources. ARGV: source, owner, ttl ms, proc, takeover owner, takeover expires.
# Free when nobody holds it or it expired; else only a takeover naming the exact holder and expiry seen takes it.
ACQUIRE_LUA = f"""
{NOW_LUA}
local cur = redis.call('HMGET', KEYS[1], 'owner', 'expires', 'proc')
local owner = cur[1] or ''
local expires = tonumber(cur[2] or '0') or 0
if owner ~= '' and expires > now and not (owner == ARGV[5] and cur[2] == ARGV[6]) then
  return {{0, owner, cur[2], cur[3] or '', expires - now}}
end
local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
local expiry = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'expires', expiry, 'proc', ARGV[4], 'acquired', now)
redis.call('HDEL', KEYS[1], 'released', 'reaped', 'size')
redis.call('PERSIST', KEYS[1])
redis.call('ZADD', KEYS[2], expiry, ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return {{1, tostring(gen)}}
"""

# KEYS: checkpoint, leases. ARGV: source, owner, gen, ttl ms, file size ('' unknown). Only the owner renews.
RENEW_LUA = f"""
{NOW_LUA}
local cur = redis.call('HMGET', KEYS[1], 'owner', 'gen')
if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[3] then
  return {{0, cur[1] or ''}}
end
local expiry = now + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'expires', expiry)
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'size', ARGV[5]) end
redis.call('ZADD', KEYS[2], expiry, ARGV[1])
return {{1, ARGV[2]}}
"""

# KEYS: checkpoint, leases. ARGV: source, owner, gen, ttl ms. A clean stop gives the lease up (compare and
# clear) but keeps it on the reaper's list: if no ingest takes it within the TTL, its agents end as lost.
RELEASE_LUA = f"""
{NOW_LUA}
local cur = redis.call('HMGET', KEYS[1], 'owner', 'gen')
if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[3] then return 0 end
local expiry = now + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'owner', '', 'expires', expiry, 'released', now)
redis.call('ZADD', KEYS[2], expiry, ARGV[1])
return 1
"""

# KEYS: leases. ARGV: our own source. The expired sources, and the ms until the next one of another source
# expires (-1: none), so the reaper wakes right then instead of a whole heartbeat later.
DUE_LUA = f"""
{NOW_LUA}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)
local later = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 2)
local wait = -1
for j = 1, #later, 2 do
  if later[j] ~= ARGV[1] then
    wait = tonumber(later[j + 1]) - now
    break
  end
end
return {{wait, due}}
"""

# KEYS: meta, alive, log, channel, checkpoint, leases (the commit's positions, so the shared epoch checks and
# publishing apply). ARGV: source, epoch candidate, stream cap, reason, seconds to keep the checkpoint.
# Once per expiry: a source renewed or reaped meanwhile is left alone, so any number of reapers is harmless.
REAP_LUA = f"""
local unpack = unpack or table.unpack
{NOW_LUA}
if not redis.call('ZSCORE', KEYS[6], ARGV[1]) then return {{-1}} end
local expires = tonumber(redis.call('HGET', KEYS[5], 'expires') or '0') or 0
if expires > now then
  redis.call('ZADD', KEYS[6], expires, ARGV[1])
  return {{-1}}
end
{EPOCH_CHECKS_LUA}
local records = redis.call('HGETALL', KEYS[2])
local needle = '"' .. ARGV[1] .. '"'  -- a cheap filter before decoding: the source as a JSON string
local fields, events, mains = {{}}, {{}}, {{}}
for j = 1, #records, 2 do
  local value = records[j + 1]
  if string.find(value, needle, 1, true) then
    local ok, rec = pcall(cjson.decode, value)
    if ok and type(rec) == 'table' and rec.source == ARGV[1] then
      fields[#fields + 1] = records[j]
      if rec.agent_id == '{MAIN_AGENT}' then
        mains[#mains + 1] = rec
      else
        local waited = tonumber(rec.waited_ms) or 0
        local since = tonumber(rec.waiting_since)
        if rec.waiting ~= cjson.null and since then waited = waited + math.max(0, now - since) end
        events[#events + 1] = cjson.encode({{
          type = 'agent_done', ts = now, session_id = rec.session_id, agent_id = rec.agent_id,
          outcome = 'lost', duration_ms = math.max(0, now - (tonumber(rec.spawned_at) or now)),
          parent_id = rec.parent_id, agent_type = rec.agent_type, waited_ms = waited, reason = ARGV[4]
        }})
      end
    end
  end
end
-- Each orchestrator last: session_end removes whatever of its session a viewer still holds.
for _, rec in ipairs(mains) do
  events[#events + 1] = cjson.encode({{
    type = 'session_end', ts = now, session_id = rec.session_id, agent_id = '{MAIN_AGENT}', reason = ARGV[4]
  }})
end
for j = 1, #fields, 512 do
  redis.call('HDEL', KEYS[2], unpack(fields, j, math.min(j + 511, #fields)))
end
local n = #events
local i = 1
if n > 0 then
{PUBLISH_LUA}
end
redis.call('HSET', KEYS[5], 'owner', '', 'reaped', now)
redis.call('EXPIRE', KEYS[5], tonumber(ARGV[5]))
redis.call('ZREM', KEYS[6], ARGV[1])
return {{#fields, n, now - expires}}
"""


def process_identity(pid: int) -> str:
    """`boot id/pid namespace/pid/start time`: one process on one machine, never a later one with its pid.

    "" where /proc cannot tell (not Linux)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")  # the pid means something only inside this namespace
        stat = Path(f"/proc/{pid}/stat").read_text()
        start = stat[stat.rindex(")") + 2 :].split()[19]  # field 22, starttime (the name may hold spaces)
    except (OSError, ValueError, IndexError):
        return ""
    return f"{boot}/{namespace}/{pid}/{start}"


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as the acquire script saw it."""

    owner: str
    expires: str  # as stored: a takeover must name exactly this expiry (the holder has not renewed since)
    proc: str
    left_ms: int

    @property
    def host(self) -> str:
        return self.owner.rsplit(":", 2)[0]

    def gone_from_here(self) -> bool | None:
        """True: a process of this machine and pid namespace that no longer runs; False: it runs; None:
        another machine or namespace (a restarted container), where only its renewals can tell."""
        here = process_identity(os.getpid())
        if not self.proc or not here or self.proc.split("/")[:2] != here.split("/")[:2]:
            return None
        pid = self.proc.split("/")[2]
        return not pid.isdigit() or process_identity(int(pid)) != self.proc


@dataclass(frozen=True)
class Reaped:
    source: str
    agents: int
    events: int
    expired_ms_ago: int


class Lease:
    """This process's lease on one source."""

    def __init__(self, redis: Redis, keys: Keys, source: str, host: str, ttl_s: float) -> None:
        self.redis = redis
        self.keys = keys
        self.source = source
        self.owner = f"{host}:{os.getpid()}:{secrets.token_hex(4)}"
        self.gen = ""  # set by acquire; the fencing token
        self.ttl_ms = int(ttl_s * 1000)
        self.proc = process_identity(os.getpid())
        self._acquire = redis.register_script(ACQUIRE_LUA)
        self._renew = redis.register_script(RENEW_LUA)
        self._release = redis.register_script(RELEASE_LUA)

    @property
    def token(self) -> tuple[str, str]:
        return self.owner, self.gen

    async def acquire(self, takeover: Holder | None = None) -> Holder | None:
        """Take the lease; None when we hold it now, else who holds it."""
        keys = [self.keys.checkpoint(self.source), self.keys.leases, self.keys.sources]
        seen = (takeover.owner, takeover.expires) if takeover else ("", "")
        reply = await self._acquire(keys=keys, args=[self.source, self.owner, self.ttl_ms, self.proc, *seen])
        if int(reply[0]) == 1:
            self.gen = _text(reply[1])
            return None
        return Holder(_text(reply[1]), _text(reply[2]), _text(reply[3]), int(reply[4]))

    async def renew(self, size: int | None) -> str | None:
        """Extend the lease by the TTL; None when done, else the owner now ("" for nobody): it is lost."""
        keys = [self.keys.checkpoint(self.source), self.keys.leases]
        args: list[str | int] = [self.source, self.owner, self.gen, self.ttl_ms, "" if size is None else size]
        reply = await self._renew(keys=keys, args=args)
        return None if int(reply[0]) == 1 else _text(reply[1])

    async def release(self) -> bool:
        keys = [self.keys.checkpoint(self.source), self.keys.leases]
        return bool(await self._release(keys=keys, args=[self.source, self.owner, self.gen, self.ttl_ms]))


class Reaper:
    """Ends the agents of every source whose lease expired. Every ingest runs one with its heartbeat."""

    def __init__(self, redis: Redis, keys: Keys, own_source: str, stream_cap: int) -> None:
        self.redis = redis
        self.keys = keys
        self.own_source = own_source
        self.stream_cap = stream_cap
        self._due = redis.register_script(DUE_LUA)
        self._reap = redis.register_script(for_keys(REAP_LUA, keys))

    async def run(self) -> tuple[list[Reaped], float | None]:
        """Reap what is due; also the seconds until another source's lease expires next (None: none)."""
        wait_ms, due = await self._due(keys=[self.keys.leases], args=[self.own_source])
        done = [r for r in [await self.reap(_text(source)) for source in due] if r is not None]
        return done, None if int(wait_ms) < 0 else int(wait_ms) / 1000

    async def reap(self, source: str) -> Reaped | None:
        keys = self.keys
        names = [keys.meta, keys.alive, keys.log, keys.channel, keys.checkpoint(source), keys.leases]
        args: list[str | int] = [source, secrets.token_hex(8), self.stream_cap, REAP_REASON, REAPED_KEEP_S]
        reply: list[Any] = await self._reap(keys=names, args=args)
        if int(reply[0]) < 0:
            return None
        return Reaped(source, int(reply[0]), int(reply[1]), int(reply[2]))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
