"""run(settings): tail the events file -> normalize -> commit each batch to Redis in one atomic call."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from contract import Keys, compact_json, safe_url

from .commit import Committer, Stale
from .events import Limits, Normalizer, Rejected
from .permissions import warn_readable
from .pricing import Pricing
from .redact import Redactor
from .settings import Settings
from .tail import Batch, Position, Tail, wakeups

log = logging.getLogger("ingest")

BOM = b"\xef\xbb\xbf"
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
LOG_BAD_LINES_PER_BATCH = 20  # beyond this a batch logs one summary line instead of one line each


@dataclass(frozen=True)
class Prepared:
    """One commit's arguments, fixed when its batch was normalized."""

    position: Position
    checkpoint: dict[str, str]
    events: list[str]
    alive_set: dict[str, str]
    alive_del: list[str]
    stats: dict[str, int]


class IngestError(RuntimeError):
    """A condition ingest cannot run with; the message says what to do."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every line: json.loads with parse_constant would build a new one per call.
DECODER = json.JSONDecoder(parse_constant=_reject_constant)


class Ingest:
    def __init__(self, settings: Settings, redis: Redis, stop: asyncio.Event) -> None:
        self.settings = settings
        self.redis = redis
        self.stop = stop
        self.keys = Keys(settings.prefix)
        self.committer = Committer(redis, self.keys, settings.source_name, settings.stream_cap)
        self.tail = Tail(settings.events_file, settings.max_line_bytes, settings.batch_lines)
        self.normalizer = Normalizer(
            source=settings.source_name,
            pricing=Pricing.load(settings.pricing_file),
            # A call open for four idle timeouts was abandoned (Claude Code died mid-call, or a lost Post).
            limits=Limits(
                idle_timeout_ms=int(settings.idle_timeout_s * 1000), open_call_ms=int(settings.idle_timeout_s * 4000)
            ),
            redact=Redactor.from_file(settings.redact_patterns_file),
            details=settings.publish_details,
        )
        self.expected = ""  # checkpoint position token of our last commit
        self.last_expire = 0.0
        self.committed_lines = 0

    async def run(self) -> None:
        try:
            await self._restore()
            async for _ in wakeups(
                self.settings.events_file,
                self.stop,
                poll_interval=self.settings.poll_interval_s,
                step_ms=self.settings.watch_step_ms,
            ):
                await self._drain()
                if self.stop.is_set():
                    break
        finally:
            self.tail.close()
        log.info("ingest stopped: %d lines committed this run", self.committed_lines)

    async def _restore(self) -> None:
        """Resume exactly at the committed checkpoint, with the join state that was committed with it."""
        saved = await self._retry(self.committer.load)
        if saved is None or await self._retry(lambda: self.committer.ensure_epoch(secrets.token_hex(8))) is None:
            return
        records = await self._retry(self.committer.alive_records) or []
        position = None
        if saved.get("pos"):
            position = Position(int(saved["dev"]), int(saved["ino"]), saved.get("fp", ""), int(saved["off"]))
        self.expected = saved.get("pos", "")
        message = self.tail.start(position, self.settings.start_at)
        state = json.loads(saved.get("state") or "{}")
        ended = json.loads(saved.get("ended") or "[]")
        self.normalizer.restore(state, ended, [json.loads(r) for r in records])
        log.info("ingest: %s", message)

    async def _drain(self) -> None:
        """Read and commit until the file has nothing new; then end what timed out."""
        in_flight: asyncio.Task[bool] | None = None
        while not self.stop.is_set():
            batch = self.tail.read_batch()
            if batch is None or batch.empty:
                break
            events, stats = self._normalize(batch)
            prepared = self._prepare(batch.after, events, stats)
            if in_flight is not None and not await in_flight:
                return  # reloaded from the checkpoint: this batch was read from a position no longer ours
            # Redis runs this commit while the next batch is read and normalized (commits stay in order).
            in_flight = asyncio.create_task(self._send(prepared))
        if in_flight is not None and not await in_flight:
            return
        now = time.time()
        if now - self.last_expire >= 1.0:
            self.last_expire = now
            expired = self.normalizer.expire(int(now * 1000))
            position = self.tail.position
            if expired and position is not None:
                events = [compact_json(e) for e in expired]
                await self._send(self._prepare(position, events, {}))
            elif expired:
                self.normalizer.take_changes()  # nothing to checkpoint against yet; the view drops them anyway

    def _normalize(self, batch: Batch) -> tuple[list[str], dict[str, int]]:
        now = int(time.time() * 1000)
        events: list[str] = []
        stats: dict[str, int] = dict(batch.counters)
        bad: list[tuple[int, str, str, bytes]] = [
            (off, reason, "line too long", ex) for off, reason, ex in batch.rejects
        ]
        for off, raw in batch.lines:
            line = raw[3:] if raw.startswith(BOM) else raw
            if line.endswith(b"\r"):
                line = line[:-1]
            try:
                if not line.strip():
                    raise Rejected("empty", "expected a JSON object, got an empty line")
                try:
                    payload = DECODER.decode(line.decode("utf-8"))
                except UnicodeDecodeError:
                    raise Rejected("invalid_utf8", "expected UTF-8 text") from None
                except (ValueError, RecursionError) as exc:
                    raise Rejected("not_json", f"expected one JSON object ({str(exc)[:80]})") from None
                events += [compact_json(e) for e in self.normalizer.feed(payload, now)]
            except Rejected as rej:
                bad.append((off, rej.reason, rej.detail, raw))
            except Exception as exc:  # a normalizer bug must cost one line, not the whole ingest
                log.exception("normalizer failed on the line at byte %d", off)
                bad.append((off, "normalizer_error", repr(exc)[:80], raw))
        for i, (off, reason, detail, excerpt) in enumerate(bad):
            stats["rejected:" + reason] = stats.get("rejected:" + reason, 0) + 1
            if i < LOG_BAD_LINES_PER_BATCH:
                log.warning(
                    "skipped line at byte %d of %s: %s; starts %r", off, self.settings.events_file, detail, excerpt[:80]
                )
        if len(bad) > LOG_BAD_LINES_PER_BATCH:
            log.warning(
                "skipped %d more bad lines in this batch (counted in %s)",
                len(bad) - LOG_BAD_LINES_PER_BATCH,
                self.keys.stats,
            )
        stats["lines"] = len(batch.lines) + len(batch.rejects)
        stats["rejected"] = len(bad)
        stats["events"] = len(events)
        return events, stats

    def _prepare(self, position: Position, events: list[str], stats: dict[str, int]) -> Prepared:
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
            "ts": str(int(time.time() * 1000)),
            **self.normalizer.state(),
        }
        return Prepared(position, checkpoint, events, alive_set, alive_del, stats)

    async def _send(self, commit: Prepared) -> bool:
        """Commit or wait for Redis; False when another ingest owns the file and we reloaded instead."""
        alive_set, alive_del = commit.alive_set, commit.alive_del
        delay = 0.1
        while True:
            try:
                await self.committer.commit(
                    # A fresh candidate each time: after a flush, the new epoch must differ from every old one.
                    self.expected,
                    secrets.token_hex(8),
                    commit.checkpoint,
                    commit.events,
                    alive_set,
                    alive_del,
                    commit.stats,
                )
                self.expected = commit.position.token
                self.committed_lines += commit.stats.get("lines", 0)
                return True
            except Stale as stale:
                if stale.current == "" and self.expected:
                    # Redis lost everything (restart without persistence, FLUSHALL): rewrite our whole view.
                    log.warning("Redis lost the checkpoint and alive set; rewriting them under a new epoch")
                    self.expected = ""
                    alive_set, alive_del = self.normalizer.all_records(), []
                    continue
                log.warning("another ingest moved the checkpoint of %s; reloading from it", self.settings.events_file)
                await self._restore()
                return False
            except REDIS_ERRORS as exc:
                if self.stop.is_set():
                    log.warning("stopping with Redis unreachable; the uncommitted batch is re-read next start")
                    return False
                log.warning("Redis unreachable (%s); retrying in %.1fs, the file offset stays put", exc, delay)
                await _sleep(self.stop, delay)
                delay = min(delay * 2, 5.0) * random.uniform(0.8, 1.2)

    async def _retry(self, call: Any) -> Any:
        delay = 0.1
        while not self.stop.is_set():
            try:
                return await call()
            except REDIS_ERRORS as exc:
                log.warning("Redis unreachable (%s); retrying in %.1fs", exc, delay)
                await _sleep(self.stop, delay)
                delay = min(delay * 2, 5.0)
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
    """Tail settings.events_file into Redis until stop is set."""
    warn_readable(settings.events_file, log)
    await Ingest(settings, redis, stop).run()
