"""agentwatch export: write the envelopes of the replay window to a file; and load such a file for
`agentwatch up --replay`, which plays it in the page without Claude Code.

The file is the WebSocket protocol recorded: a first line `{"type": "snapshot", ...}` with the state at the
start (the alive records, as published, so redacted like everything else), then one `event` envelope per
line. With --session, only that session's records and events.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from contract import (
    DEFAULT_REDIS_URL,
    LOG_FIELD,
    MARK_FIELD,
    META_EPOCH,
    META_KEYFRAME_EPOCH,
    META_KEYFRAME_SEQ,
    META_KEYFRAME_TS,
    META_SEQ,
    Keys,
    OneLineParser,
    SettingsError,
    add_connection_arguments,
    check_connection,
    compact_json,
    duration_setting,
    safe_url,
)
from contract.connect import redis_client
from contract.viewstate import ViewState
from ingest.timeline import Timeline
from relay.hub import session_of
from relay.replay import OutsideWindow, Point, Window

PROG = "agentwatch export"
KEYFRAME_EVERY = 2000  # envelopes between the keyframes of a loaded file


class ReplayFileError(ValueError):
    """A --replay file that is not an export; the message says which line and what was expected."""


async def export(redis: Redis, keys: Keys, since_s: float, session: str | None, out: IO[str]) -> tuple[int, str]:
    """Write the window's last `since_s` seconds; (envelopes written, a note when the window is shorter)."""
    window = Window(redis, keys)
    bounds = await window.bounds()
    if bounds["first_seq"] is None:
        raise OutsideWindow("nothing to export: the replay window is empty", bounds)
    note = ""
    try:
        start, _ = await window.resolve(Point(ts=int(time.time() * 1000 - since_s * 1000)))
    except OutsideWindow:
        start = bounds["first_seq"]
        note = f"the window holds less than asked: exporting from seq {start} (all of it)"
    state, epoch = await window.state_at(start)
    alive = [r for r in state.alive().values() if session is None or r["session_id"] == session]
    out.write(compact_json({"type": "snapshot", "seq": start, "epoch": epoch, "alive": alive}) + "\n")
    written, last = 0, start
    while True:
        batch = await window.after(last)
        if not batch:
            break
        for seq, envelope in batch:
            last = seq
            if session is None or session_of(envelope) == session:
                out.write(envelope + "\n")
                written += 1
    return written, note


def read_file(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(alive records at the start, event data in order) of an export; ReplayFileError when it is not one."""
    alive: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayFileError(f"cannot read {path} ({exc})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except ValueError:
            raise ReplayFileError(f"{path} line {number}: expected one JSON message, got {line[:60]!r}") from None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "snapshot" and number == 1 and isinstance(message.get("alive"), list):
            alive = [r for r in message["alive"] if isinstance(r, dict)]
        elif kind == "event" and isinstance(message.get("data"), dict):
            events.append(message["data"])
        else:
            raise ReplayFileError(
                f"{path} line {number}: expected a snapshot first and then event envelopes (agentwatch export), "
                f"got {line[:60]!r}"
            )
    return alive, events


async def load(redis: Redis, keys: Keys, alive: list[dict[str, Any]], events: list[dict[str, Any]]) -> int:
    """Write a file's events as a fresh window: seqs 1..N under a new epoch, keyframes, markers, and the alive
    hash as it is at the end. Returns N."""
    epoch = secrets.token_hex(8)
    state = ViewState(alive)
    now = int(time.time() * 1000)
    await redis.delete(keys.log, keys.keyframes, keys.keyframe_times, keys.marks, keys.timeline, keys.alive)
    await _keyframe(redis, keys, 0, now, epoch, state)
    timeline = Timeline()
    for seq, chunk in _chunks(events, 500):
        pipe = redis.pipeline(transaction=False)
        for i, data in enumerate(chunk):
            timeline.add(seq + i, data)
            envelope = compact_json({"type": "event", "seq": seq + i, "epoch": epoch, "data": data})
            pipe.xadd(keys.log, {LOG_FIELD: envelope}, id=f"{seq + i}-0")
        await pipe.execute()
        for i, data in enumerate(chunk):
            state.apply(data)
            if (seq + i) % KEYFRAME_EVERY == 0:
                await _keyframe(redis, keys, seq + i, now, epoch, state)
    last = len(events)
    if last % KEYFRAME_EVERY:
        await _keyframe(redis, keys, last, now, epoch, state)
    pipe = redis.pipeline(transaction=False)
    for seq, mark in timeline.marks:
        pipe.xadd(keys.marks, {MARK_FIELD: mark}, id=f"{seq}-0")
    if timeline.minutes:
        pipe.hset(keys.timeline, mapping={k: str(v) for k, v in timeline.minutes.items()})
    if state.records:
        pipe.hset(keys.alive, mapping={k: compact_json(v) for k, v in state.records.items()})
    pipe.hset(keys.meta, mapping={META_EPOCH: epoch, META_SEQ: last})
    await pipe.execute()
    return last


async def _keyframe(redis: Redis, keys: Keys, seq: int, now: int, epoch: str, state: ViewState) -> None:
    alive = compact_json(state.alive())
    await redis.xadd(keys.keyframes, {"ts": now, "epoch": epoch, "alive": alive}, id=f"{seq}-1")
    await redis.zadd(keys.keyframe_times, {str(seq): now})
    await redis.hset(keys.meta, mapping={META_KEYFRAME_SEQ: seq, META_KEYFRAME_TS: now, META_KEYFRAME_EPOCH: epoch})


def _chunks(items: list[dict[str, Any]], size: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    for i in range(0, len(items), size):
        yield i + 1, items[i : i + size]


async def _run(redis_url: str, prefix: str, since_s: float, session: str | None) -> tuple[int, str]:
    redis = redis_client(redis_url, socket_connect_timeout=5, socket_timeout=30)
    try:
        return await export(redis, Keys.for_url(prefix, redis_url), since_s, session, sys.stdout)
    finally:
        await redis.aclose()


def main(argv: Sequence[str]) -> int:
    parser = OneLineParser(prog=PROG, description="Write the replay window's envelopes (JSONL) to stdout.")
    add_connection_arguments(parser, DEFAULT_REDIS_URL, "Redis to read (AGENTWATCH_REDIS_URL)")
    parser.add_argument("--since", default="24h", help="how far back: 90s, 15m, 2h, 1d (default %(default)s)")
    parser.add_argument("--session", default=None, help="only this session's records and events")
    ns = parser.parse_args(argv)
    try:
        check_connection(ns.redis_url, ns.prefix)
        since_s = duration_setting("--since", ns.since, 1.0)
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        written, note = asyncio.run(_run(ns.redis_url, ns.prefix, since_s, ns.session))
    except OutsideWindow as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except (RedisError, OSError) as exc:
        print(f"{PROG}: cannot read Redis at {safe_url(ns.redis_url)} ({exc})", file=sys.stderr)
        return 1
    if note:
        print(f"{PROG}: {note}", file=sys.stderr)
    print(f"{PROG}: wrote {written} events", file=sys.stderr)
    return 0
