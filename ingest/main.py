"""run(settings): tail the events file -> normalize -> commit each batch to Redis in one atomic call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import secrets
import sys
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from contract import Keys, compact_json, safe_url
from contract.hygiene import eviction_warning

from .commit import Committer, Fenced, Keyframes, Stale
from .events import Limits, Normalizer
from .lease import Holder, Lease, Reaper
from .lines import normalize_batch
from .permissions import warn_readable
from .pricing import Pricing
from .redact import Redactor
from .retention import Retention
from .settings import Settings
from .tail import Batch, Position, Tail, wakeups
from .timeline import Timeline

log = logging.getLogger("ingest")

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
TRIM_EVERY_S = 60.0  # how often the replay window is cut (by time, and by bytes past the ceiling)


@dataclass(frozen=True)
class Prepared:
    """One commit's arguments, fixed when its batch was normalized."""

    position: Position
    checkpoint: dict[str, str]
    events: list[str]
    alive_set: dict[str, str]
    alive_del: list[str]
    stats: dict[str, int]
    checkpoint_del: list[str]
    timeline: Timeline


class IngestError(RuntimeError):
    """A condition ingest cannot run with; the message says what to do."""


class LeaseError(IngestError):
    """Another live ingest holds our source (at start-up), or took it over while we ran: exit 2."""


class Ingest:
    def __init__(self, settings: Settings, redis: Redis, stop: asyncio.Event) -> None:
        self.settings = settings
        self.redis = redis
        self.stop = stop
        self.keys = Keys.for_url(settings.prefix, settings.redis_url)
        self.host = settings.host_name
        self.source = settings.source_name
        keyframes = Keyframes(settings.keyframe_events, int(settings.keyframe_interval_s * 1000))
        self.committer = Committer(redis, self.keys, self.source, settings.stream_cap, keyframes)
        self.retention = Retention(redis, self.keys, settings.retention_s, settings.retention_max_bytes)
        self.lease = Lease(redis, self.keys, self.source, self.host, settings.lease_ttl_s)
        self.reaper = Reaper(redis, self.keys, self.source, settings.stream_cap)
        self.lease_lost: str | None = None  # set by the heartbeat: our lease is gone (to this owner; "": nobody)
        self.tail = Tail(settings.events_file, settings.max_line_bytes, settings.batch_lines)
        self.normalizer = Normalizer(
            source=self.source,
            pricing=Pricing.load(settings.pricing_file),
            # A call open for four idle timeouts was abandoned (Claude Code died mid-call, or a lost Post).
            limits=Limits(
                idle_timeout_ms=int(settings.idle_timeout_s * 1000), open_call_ms=int(settings.idle_timeout_s * 4000)
            ),
            redact=Redactor.from_file(settings.redact_patterns_file),
            details=settings.publish_details,
            transcripts=settings.transcripts,
        )
        self.expected = ""  # checkpoint position token of our last commit
        self.last_expire = 0.0
        self.committed_lines = 0
        self.trim_refused = False

    async def run(self) -> None:
        try:
            if not await self._claim():
                return
            await self._restore()
            heartbeat = asyncio.create_task(self._heartbeat(), name="lease heartbeat")
            try:
                async for _ in wakeups(
                    self.settings.events_file,
                    self.stop,
                    poll_interval=self.settings.poll_interval_s,
                    step_ms=self.settings.watch_step_ms,
                ):
                    if heartbeat.done():
                        heartbeat.result()  # it never returns while running: raise what killed it
                    if self.lease_lost is not None:
                        await self._reclaim(self.lease_lost)
                    await self._drain()
                    if self.stop.is_set():
                        break
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
            await self._release()
        finally:
            self.tail.close()
        log.info("ingest stopped: %d lines committed this run", self.committed_lines)

    # ---- the lease on our source (ingest/lease.py)
    async def _claim(self) -> bool:
        """Hold our source's lease, after ending the agents of every expired source (ours too: a run that ended
        longer than the TTL ago). Taken over from a holder that is gone; refused while another one lives.
        False when asked to stop first."""
        takeover: Holder | None = None
        for _ in range(5):
            if await self._retry(self._reap) is None and self.stop.is_set():
                return False
            got = await self._retry(lambda t=takeover: self._acquire(t))
            if got is None:
                return False
            holder = got[0]
            if holder is None:
                self.committer.lease = self.lease.token
                log.info(
                    "ingest: holding the lease of source %s as %s (generation %s, TTL %gs)",
                    self.source,
                    self.lease.owner,
                    self.lease.gen,
                    self.settings.lease_ttl_s,
                )
                return True
            if (takeover is not None and holder.owner == takeover.owner) or not await self._gone(holder):
                break
            if self.stop.is_set():
                return False
            takeover = holder
        raise LeaseError(
            f"source {self.source} is held by {holder.owner} on host {holder.host} (lease expires in "
            f"{holder.left_ms / 1000:.0f}s): another ingest reads this file; stop it, or give this one its own "
            "--source (two machines with one host name: set AGENTWATCH_HOST)"
        )

    async def _acquire(self, takeover: Holder | None) -> tuple[Holder | None]:
        try:
            return (await self.lease.acquire(takeover),)
        except ResponseError as exc:  # e.g. an ACL without TIME or EVAL: say so instead of a traceback
            raise IngestError(f"cannot take the lease of source {self.source}: Redis said {exc}") from None

    async def _gone(self, holder: Holder) -> bool:
        """Whether a holder of our lease is gone (so we may take it over before it expires)."""
        if holder.owner == self.lease.owner:
            return True  # ours, from before a Redis rollback
        if holder.host != self.host:
            return False
        gone = holder.gone_from_here()
        if gone is not None:
            if gone:
                log.warning("ingest: %s held source %s and is gone: taking its lease over", holder.owner, self.source)
            return gone
        # Our host name, another pid namespace: a restarted container (or one name on two machines). Alive
        # only if it renews: watch one and a half renewal periods, or until it expires.
        wait = min(self.settings.lease_ttl_s / 2 + 0.5, holder.left_ms / 1000 + 0.1)
        log.info("ingest: %s holds source %s; taking over unless it renews in %.1fs", holder.owner, self.source, wait)
        await _sleep(self.stop, wait)
        return not self.stop.is_set()

    async def _reap(self) -> float | None:
        """End the agents of every source whose lease expired; the seconds until the next one expires."""
        reaped, wait = await self.reaper.run()
        for r in reaped:
            log.warning(
                "ingest: the lease of source %s expired %.1fs ago: ended its %d alive agents as lost",
                r.source,
                r.expired_ms_ago / 1000,
                r.agents,
            )
        return wait

    async def _heartbeat(self) -> None:
        """Renew our lease every TTL/3 and reap expired sources, the moment the next one expires."""
        loop = asyncio.get_running_loop()
        interval = self.settings.lease_ttl_s / 3
        next_renew = loop.time() + interval
        next_trim = loop.time() + TRIM_EVERY_S
        failing = False
        while not self.stop.is_set():
            wait = None
            try:
                if loop.time() >= next_trim:
                    next_trim = loop.time() + TRIM_EVERY_S
                    await self._trim()
                if loop.time() >= next_renew:
                    next_renew = loop.time() + interval
                    gen = self.lease.gen
                    owner = await self.lease.renew(self._file_size())
                    if owner is not None and self.lease_lost is None and gen == self.lease.gen:
                        self.lease_lost = owner  # the main loop takes it from here, between two batches
                wait = await self._reap()
                failing = False
            except REDIS_ERRORS as exc:
                if not failing:
                    log.warning("lease heartbeat: Redis unreachable (%s); retrying", exc)
                failing = True
                next_renew = min(next_renew, loop.time() + 0.5)
            delay = min(next_renew, next_trim) - loop.time()
            if wait is not None:
                delay = min(delay, wait + 0.05)
            await _sleep(self.stop, max(0.05, delay))

    async def _trim(self) -> None:
        """Cut the replay window by time (and bytes); a Redis that refuses it is said once, not retried."""
        try:
            await self.retention.run()
        except ResponseError as exc:
            if not self.trim_refused:
                self.trim_refused = True
                log.warning("retention: Redis refused the trim (%s); the replay window is not cut", exc)

    async def _reclaim(self, owner: str) -> bool:
        """Our lease was taken over or reaped (we were paused or cut off past the TTL, or Redis lost it). Take
        it again if free and start over from the checkpoint (True); stop if another ingest holds it. False:
        Redis lost the checkpoint too (the Stale path rewrites our view)."""
        log.warning("ingest: lost the lease of source %s (now held by %s)", self.source, owner or "nobody")
        self.lease_lost = None
        try:
            if not await self._claim():
                return False
        except LeaseError as exc:
            raise LeaseError(f"stopping: {exc}") from None
        saved = await self._retry(self.committer.load)
        if saved and saved.get("pos"):
            await self._restore()
            return True
        return False

    async def _release(self) -> None:
        try:
            if await self.lease.release():
                log.info(
                    "ingest: released the lease of source %s; its agents end as lost unless an ingest takes it "
                    "within %gs",
                    self.source,
                    self.settings.lease_ttl_s,
                )
        except REDIS_ERRORS as exc:
            log.warning("could not release the lease of %s (%s): it expires by itself", self.source, exc)

    def _file_size(self) -> int | None:
        """The size of the file we are reading, for the lag in `agentwatch status`."""
        pos = self.tail.position
        try:
            st = os.stat(self.settings.events_file)
        except OSError:
            return None
        return st.st_size if pos is not None and (st.st_dev, st.st_ino) == (pos.dev, pos.ino) else None

    async def _restore(self) -> None:
        """Resume exactly at the committed checkpoint, with the join state that was committed with it."""
        saved = await self._retry(self.committer.load)
        if saved is None or await self._retry(lambda: self.committer.ensure_epoch(secrets.token_hex(8))) is None:
            return
        records = await self._retry(self.committer.alive_records) or []
        position = None
        foreign = self._foreign(saved)
        if saved.get("pos") and not foreign:
            position = Position(int(saved["dev"]), int(saved["ino"]), saved.get("fp", ""), int(saved["off"]))
        self.expected = saved.get("pos", "")  # the compare-and-set replaces a foreign checkpoint with ours
        message = self.tail.start(position, self.settings.start_at)
        self.normalizer.restore(saved, [json.loads(r) for r in records], foreign=bool(foreign))
        if foreign:
            log.warning(
                "ingest: the checkpoint of source %s is not this file's (%s): replacing it, not following it; %s",
                self.source,
                foreign,
                message,
            )
        else:
            log.info("ingest: %s", message)

    def _foreign(self, saved: dict[str, str]) -> str | None:
        """Why a checkpoint cannot be this file's, or None. It names the host and path it was written for;
        one from before that (or with a hand-made name) must at least be this file's inode, or a rotated one."""
        if not saved.get("pos"):
            return None
        host, path = saved.get("host"), saved.get("path")
        if host and host != self.host:
            return f"written on host {host}"
        if path and path != str(self.settings.events_file):
            return f"written for {path}"
        if host:
            return None  # this host's file at this path: rotated or recreated since, the tail takes it from there
        try:
            want = (int(saved["dev"]), int(saved["ino"]))
            with os.scandir(self.settings.events_file.parent) as entries:
                for entry in entries:
                    if entry.name.startswith(self.settings.events_file.name):
                        st = entry.stat(follow_symlinks=False)
                        if (st.st_dev, st.st_ino) == want:
                            return None
        except (OSError, KeyError, ValueError):
            pass
        return "another file's inode and first line"

    async def _drain(self) -> None:
        """Read and commit until the file has nothing new; then end what timed out."""
        in_flight: asyncio.Task[bool] | None = None
        while not self.stop.is_set():
            batch = self.tail.read_batch()
            if batch is None or batch.empty:
                break
            events, stats, timeline = self._normalize(batch)
            prepared = self._prepare(batch.after, events, stats, timeline)
            if in_flight is not None and not await in_flight:
                return  # reloaded from the checkpoint: this batch was read from a position no longer ours
            # Redis runs this commit while the next batch is read and normalized (commits stay in order). The
            # task must write its request before this loop parses again, or nothing overlaps: redis-py takes a
            # few loop turns to get there (script, client, connection), so the loop yields a few times (4 turns
            # cost nothing next to 2 000 lines; with none, ingest and Redis took turns: 55 000 vs 82 000 lines/s).
            in_flight = asyncio.create_task(self._send(prepared))
            for _ in range(4):
                await asyncio.sleep(0)
        if in_flight is not None and not await in_flight:
            return
        now = time.time()
        if now - self.last_expire >= 1.0:
            # Once a second: end what timed out, and read what the transcripts gained (usage per agent).
            self.last_expire = now
            changed = self.normalizer.expire(int(now * 1000))
            position = self.tail.position
            if changed and position is not None:
                timeline = Timeline()
                timeline.extend(changed)
                events = [compact_json(e) for e in changed]
                await self._send(self._prepare(position, events, {}, timeline))
            elif changed:
                self.normalizer.take_changes()  # nothing to checkpoint against yet; the view drops them anyway

    def _normalize(self, batch: Batch) -> tuple[list[str], dict[str, int], Timeline]:
        return normalize_batch(self.normalizer, batch, self.settings.events_file, self.keys.stats)

    def _prepare(self, position: Position, events: list[str], stats: dict[str, int], timeline: Timeline) -> Prepared:
        """Everything one commit writes, taken from the normalizer now (it moves on to the next batch)."""
        alive_set, alive_del, counters = self.normalizer.take_changes()
        for name, n in counters.items():
            stats[name] = stats.get(name, 0) + n
        checkpoint = {
            "pos": position.token,
            "dev": str(position.dev),
            "ino": str(position.ino),
            "fp": position.fp,
            "off": str(position.off),
            "path": str(self.settings.events_file),
            "host": self.host,
            "ts": str(int(time.time() * 1000)),
        }
        join_set, join_del = self.normalizer.state()
        checkpoint.update(join_set)
        return Prepared(position, checkpoint, events, alive_set, alive_del, stats, join_del, timeline)

    async def _send(self, commit: Prepared) -> bool:
        """Commit or wait for Redis; False when another ingest owns the file and we reloaded instead."""
        alive_set, alive_del = commit.alive_set, commit.alive_del
        checkpoint, checkpoint_del = commit.checkpoint, commit.checkpoint_del
        delay = 0.1
        while True:
            try:
                await self.committer.commit(
                    # A fresh candidate each time: after a flush, the new epoch must differ from every old one.
                    self.expected,
                    secrets.token_hex(8),
                    checkpoint,
                    commit.events,
                    alive_set,
                    alive_del,
                    commit.stats,
                    checkpoint_del,
                    commit.timeline,
                )
                self.expected = commit.position.token
                self.committed_lines += commit.stats.get("lines", 0)
                return True
            except Fenced as fenced:
                # Nothing was written. Our lease is gone: start over from the checkpoint under a new one, or stop.
                if await self._reclaim(fenced.owner) or self.stop.is_set():
                    return False
                continue
            except Stale as stale:
                if stale.current == "" and self.expected:
                    # Redis lost everything (restart without persistence, FLUSHALL): rewrite our whole view.
                    log.warning("Redis lost the checkpoint and alive set; rewriting them under a new epoch")
                    self.expected = ""
                    alive_set, alive_del = self.normalizer.all_records(), []
                    checkpoint = {**commit.checkpoint, **self.normalizer.full_state()}
                    continue
                # Only our lease's holder commits here, so the checkpoint went back: a Redis rollback.
                log.warning("the checkpoint of %s went back (a Redis rollback?); resuming from it", self.source)
                await self._restore()
                return False
            except REDIS_ERRORS as exc:
                if self.stop.is_set():
                    log.warning("stopping with Redis unreachable; the uncommitted batch is re-read next start")
                    return False
                log.warning("Redis unreachable (%s); retrying in %.1fs, the file offset stays put", exc, delay)
                await _sleep(self.stop, delay)
                delay = min(delay * 2, 2.0) * random.uniform(0.8, 1.2)  # a failover takes seconds

    async def _retry(self, call: Any) -> Any:
        delay = 0.1
        while not self.stop.is_set():
            try:
                return await call()
            except REDIS_ERRORS as exc:
                log.warning("Redis unreachable (%s); retrying in %.1fs", exc, delay)
                await _sleep(self.stop, delay)
                delay = min(delay * 2, 2.0)
        return None


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def check_redis(redis: Redis, url: str, wait_s: float) -> None:
    """Fail fast with one clear line when Redis is not there at start-up (later outages are waited out)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            await redis.ping()
            return
        except REDIS_ERRORS as exc:
            if time.monotonic() >= deadline:
                hint = "start it or pass --redis-url / AGENTWATCH_REDIS_URL"
                raise IngestError(f"cannot reach Redis at {safe_url(url)} ({exc}); {hint}") from None
            await asyncio.sleep(0.2)


async def run(settings: Settings, redis: Redis, stop: asyncio.Event) -> None:
    """Tail settings.events_file into Redis until stop is set.

    Exits the process with code 2 and one line when another live ingest holds this file's source."""
    warn_readable(settings.events_file, log)
    if warning := await eviction_warning(redis):
        log.warning("%s", warning)
    try:
        await Ingest(settings, redis, stop).run()
    except LeaseError as exc:
        print(f"agentwatch ingest: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
