"""One Redis subscription per relay process, fanned out to one bounded queue per viewer.

Redis pub/sub is at-most-once, so every envelope carries seq and epoch: the hub forwards seqs in order,
fills a gap from the log stream, and when it cannot (trimmed, or Redis lost its state) it tells every
viewer to take a fresh snapshot. It is never silent about a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from contract import LOG_FIELD, META_EPOCH, META_SEQ, Keys, compact_json, parse_json
from contract.hygiene import eviction_warning

from .fanout import RESET, Fanout, Viewer
from .share import Share

log = logging.getLogger("relay.hub")

# Connection loss, keys someone broke by hand, and a Cluster's slot map caught mid-failover (not a RedisError).
REDIS_ERRORS = (RedisError, RedisClusterException, OSError)
MAX_CHANNEL_MESSAGE = 4 << 20  # ingest publishes at most 512 KiB of envelopes per message; this was not ingest

# Snapshot and seq read in one call, so the snapshot is exactly the state at seq.
SNAPSHOT_LUA = f"""
return {{redis.call('HGET', KEYS[1], '{META_SEQ}'), redis.call('HGET', KEYS[1], '{META_EPOCH}'),
        redis.call('HVALS', KEYS[2])}}
"""
# Current seq/epoch and the log entries after `since`, in one call, so "nothing missing" can be checked.
RESUME_LUA = f"""
local seq = tonumber(redis.call('HGET', KEYS[1], '{META_SEQ}') or '0')
local epoch = redis.call('HGET', KEYS[1], '{META_EPOCH}') or ''
local since = tonumber(ARGV[1])
if seq - since > tonumber(ARGV[2]) or since > seq then return {{seq, epoch, {{}}}} end
return {{seq, epoch, redis.call('XRANGE', KEYS[2], '(' .. since .. '-0', '+')}}
"""


@dataclass
class Snapshot:
    seq: int
    epoch: str
    alive: list[dict[str, Any]]

    def message(self, reset: bool = False, share: Share | None = None) -> str:
        """The snapshot frame; for a share viewer only its session's records, flagged as a filtered view."""
        alive = self.alive if share is None else [r for r in self.alive if r.get("session_id") == share.session]
        body: dict[str, Any] = {"type": "snapshot", "seq": self.seq, "epoch": self.epoch, "alive": alive}
        if reset:
            body["reset"] = True
        if share is not None:
            body["filtered"] = True
            body["share"] = {"session": share.session, "expires": share.expires}
        return compact_json(body)


class Hub:
    def __init__(self, redis: Redis, keys: Keys, sync_interval_s: float = 1.0, backlog: int = 2048) -> None:
        self.redis = redis
        self.keys = keys
        self.sync_interval_s = sync_interval_s
        self.fanout = Fanout(backlog)
        self.epoch: str | None = None
        self.last_seq = 0
        self.ready = asyncio.Event()
        self._eviction_checked = (
            False  # said once, at the first connection  # subscribed and in sync: viewers may take snapshots
        )
        # shares_refused: share links refused at the handshake (bad, foreign-key or expired); counted by the app
        self.stats: dict[str, int] = {
            "delivered": 0,
            "gaps_filled": 0,
            "resets": 0,
            "bad_messages": 0,
            "reconnects": 0,
            "shares_refused": 0,
            "rollbacks": 0,  # seq went back within an epoch (failover, restore): every viewer resynced
            "replays": 0,  # replay viewers now (relay/replay.py); not in `viewers`
            "shed": 0,  # viewers closed because the relay was over capacity (relay/overload.py)
            "loop_lag_ms": 0,  # how late the event loop ran a timer at the last check
        }
        self._snapshot = redis.register_script(SNAPSHOT_LUA)
        self._resume = redis.register_script(RESUME_LUA)

    # ---- viewers
    @property
    def viewers(self) -> set[Viewer]:
        return self.fanout.viewers

    def add(self, viewer: Viewer) -> None:
        self.fanout.add(viewer)

    def remove(self, viewer: Viewer) -> None:
        self.fanout.remove(viewer)

    async def snapshot(self) -> Snapshot:
        seq, epoch, values = await self._snapshot(keys=[self.keys.meta, self.keys.alive])
        alive = []
        for raw in values:
            try:
                record = parse_json(raw)
            except (ValueError, RecursionError):
                record = None
            if isinstance(record, dict):
                alive.append(record)
            else:
                self.stats["bad_messages"] += 1  # someone wrote into our hash by hand
        return Snapshot(int(seq or 0), text_of(epoch or b""), alive)

    async def resume(self, since: int, epoch: str, limit: int) -> list[tuple[int, str]] | None:
        """The envelopes after `since` of `epoch`, or None when they are not all there any more."""
        seq, current, entries = await self._resume(keys=[self.keys.meta, self.keys.log], args=[since, limit])
        if text_of(current) != epoch or since > int(seq):
            return None
        out = [(entry_seq(entry_id), text_of(fields[1])) for entry_id, fields in entries]
        if [s for s, _ in out] != list(range(since + 1, int(seq) + 1)):
            return None
        return out

    # ---- the listener
    async def run(self) -> None:
        delay = 0.1
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                # A keyed read on this client first, after every error too: on a Cluster it reloads the slot map
                # the subscription is routed by. redis-py 8.1's sharded subscriber never does that by itself and
                # keeps retrying a dead master (../shared/reference/team-scale.md §3).
                await self.redis.hmget(self.keys.meta, [META_SEQ])
                if self.keys.cluster:
                    await pubsub.ssubscribe(self.keys.channel)  # SPUBLISHed by the commit script, in our shard
                else:
                    await pubsub.subscribe(self.keys.channel)
                await self._sync()
                self.ready.set()
                if not self._eviction_checked:
                    self._eviction_checked = True
                    if warning := await eviction_warning(self.redis):
                        log.warning("%s", warning)
                delay = 0.1
                while True:
                    message = await _receive(pubsub, self.sync_interval_s)
                    if message is None:
                        await self._sync()  # quiet for a while: check that nothing was lost on the way
                    elif message.get("type") in ("message", "smessage"):
                        await self._on_message(message["data"])
            except REDIS_ERRORS as exc:
                self.ready.clear()
                self.stats["reconnects"] += 1
                log.warning("Redis subscription lost (%s); resubscribing in %.1fs", exc, delay)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), 1.0)  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 2.0)  # back within about 2 s of a failover

    async def _on_message(self, data: bytes | str) -> None:
        """One channel message: an envelope, or a JSON array of envelopes (one commit's events)."""
        if len(data) > MAX_CHANNEL_MESSAGE:
            self._bad("oversized message on the channel")
            return
        envelopes = parse_envelopes(data)
        if envelopes is None:
            self._bad("a message that is not an agentwatch envelope")
            return
        for seq, epoch, text in envelopes:
            if epoch != self.epoch or seq > self.last_seq + 1:
                # Another epoch, or a gap: check Redis itself, so a stray message cannot cause a false reset.
                await self._sync(upto=seq if epoch == self.epoch else None)
                if epoch != self.epoch or seq != self.last_seq + 1:
                    if seq > self.last_seq:
                        self._bad("an envelope Redis does not know (wrong epoch or seq)")
                    continue
            if seq <= self.last_seq:
                continue  # already delivered (a gap fill got there first)
            self._deliver(seq, text)
        self.fanout.flush()

    def _bad(self, what: str) -> None:
        self.stats["bad_messages"] += 1
        if self.stats["bad_messages"] <= 10 or self.stats["bad_messages"] % 1000 == 0:
            log.warning("dropped %s on %s (%d so far)", what, self.keys.channel, self.stats["bad_messages"])

    def _deliver(self, seq: int, text: str) -> None:
        self.last_seq = seq
        self.stats["delivered"] += 1
        self.fanout.push((seq, text))

    async def _sync(self, upto: int | None = None) -> None:
        """Compare with Redis' own seq and epoch; fill a gap from the log or reset every viewer."""
        seq_raw, epoch_raw = await self.redis.hmget(self.keys.meta, [META_SEQ, META_EPOCH])
        seq, epoch = int(seq_raw or 0), text_of(epoch_raw or b"")
        if epoch != self.epoch:
            if self.epoch:
                log.warning(
                    "Redis epoch changed (%s -> %s): Redis lost its state; every viewer resyncs", self.epoch, epoch
                )
            if self.epoch is not None:
                self._reset_all()
            self.epoch, self.last_seq = epoch, seq
            return
        if seq < self.last_seq:
            # Same epoch, fewer seqs: a failover to a lagging replica or a restore lost writes viewers were
            # sent, and the next commits would reuse their seqs. Never a silent gap: everyone resyncs.
            log.warning(
                "Redis seq went back from %d to %d in epoch %s (failover or restore); every viewer resyncs",
                self.last_seq,
                seq,
                epoch,
            )
            self.stats["rollbacks"] += 1
            self._reset_all()
            self.last_seq = seq
            return
        target = seq if upto is None else min(seq, upto - 1)
        if target <= self.last_seq:
            return
        entries = await self.redis.xrange(self.keys.log, f"({self.last_seq}-0", f"{target}-0") or []
        filled = [(entry_seq(entry_id), fields) for entry_id, fields in entries]
        if [s for s, _ in filled] != list(range(self.last_seq + 1, target + 1)):
            log.warning(
                "seqs %d..%d are no longer in %s; every viewer resyncs", self.last_seq + 1, target, self.keys.log
            )
            self._reset_all()
            self.last_seq = target
            return
        self.stats["gaps_filled"] += 1
        for s, fields in filled:
            self._deliver(s, text_of(stream_field(fields, LOG_FIELD)))
        self.fanout.flush()

    def _reset_all(self) -> None:
        self.stats["resets"] += 1
        self.fanout.push(RESET)
        self.fanout.flush()


async def _receive(pubsub: PubSub, wait_s: float) -> dict[str, Any] | None:
    """The next message, or None after wait_s without one."""
    if not isinstance(pubsub, ClusterPubSub):
        message: dict[str, Any] | None = await pubsub.get_message(timeout=wait_s)
        return message
    if not pubsub.node_pubsub_mapping:  # the shard's node was dropped mid-failover: it would return at once
        raise RedisConnectionError("the sharded subscription has no node")
    return await pubsub.get_sharded_message(timeout=wait_s)


class _Head(msgspec.Struct):
    """What the hub checks of an envelope; its data is skipped, not decoded."""

    type: str
    seq: int
    epoch: str


_heads = msgspec.json.Decoder(list[msgspec.Raw])
_head = msgspec.json.Decoder(_Head)


def parse_envelopes(data: bytes | str) -> list[tuple[int, str, str]] | None:
    """(seq, epoch, text) of each event envelope in a channel message; None when any part is not one."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        parts = _heads.decode(raw) if raw[:1] == b"[" else [msgspec.Raw(raw)]
        out = []
        for part in parts:
            head = _head.decode(part)
            if head.type != "event":
                return None
            out.append((head.seq, head.epoch, bytes(part).decode()))
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None
    return out or None


class _Of(msgspec.Struct):
    session_id: Any = None


class _Data(msgspec.Struct):
    data: _Of


_session = msgspec.json.Decoder(_Data).decode


def session_of(envelope: str) -> object:
    """The session an envelope's event is about (None for a malformed one)."""
    try:
        return _session(envelope).data.session_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def text_of(value: bytes | str) -> str:
    """A reply as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else value


def entry_seq(entry_id: bytes | str | None) -> int:
    if entry_id is None:
        return -1
    return int(text_of(entry_id).split("-", 1)[0])


def stream_field(fields: dict[Any, Any] | None, name: str) -> bytes | str:
    fields = fields or {}
    value = fields.get(name.encode(), fields.get(name))
    if value is None:
        raise RedisError(f"log entry without field {name!r}")
    return value  # type: ignore[no-any-return]


__all__ = (
    "RESET",
    "Hub",
    "Snapshot",
    "Viewer",
    "entry_seq",
    "parse_envelopes",
    "session_of",
    "stream_field",
    "text_of",
)
