"""Real Claude Code installs (../shared/fixtures/real/, 1.0.67 to 2.1.145+) through the real parts.

Most of these files are grouped by event type, not in the order Claude Code sent them, so only order-free
properties are asserted on them: every payload accepted, every tool event on the agent that made it, one
node per spawn call, nothing left of a session that ended, and the stream equal to the alive hash.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from contract import MAIN_AGENT, Keys
from ingest.commit import Committer
from ingest.events import Normalizer
from ingest.pricing import Pricing
from ingest.redact import Redactor
from tests.mirror import Mirror, hash_counters, hash_view
from tests.stack import FIXTURE, RedisServer, run_hook, start_ingest, wait_for

REAL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real"
FILES = sorted(REAL.glob("*.jsonl"))
SOURCES = [*FILES, FIXTURE]
reliability = pytest.mark.reliability


def payloads(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_real_installs_are_here() -> None:
    # Six installs; if they move, these tests must not pass by reading nothing.
    assert len(FILES) == 6 and sum(len(payloads(p)) for p in FILES) == 1306


@reliability(
    "Real Claude Code installs",
    "the stream is the truth",
    injected="six real installs (1.0.67 to 2.1.145+) and the fixture, one commit per payload through the real "
    "commit script on a real redis-server",
    checked="after every commit, the published events applied to a viewer's copy equal HGETALL {p}:alive field "
    "for field",
)
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name.split("__")[0])
async def test_stream_equals_the_alive_hash_after_every_commit(
    redis_server: RedisServer, prefix: str, source: Path
) -> None:
    """One commit per payload through the real commit script; after each, the events it published, applied
    to what a viewer held, give exactly `HGETALL {p}:alive`, field for field."""
    keys = Keys(prefix)
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        committer = Committer(redis, keys, "real", 100_000)
        norm = Normalizer(source="real", pricing=Pricing.load(), redact=Redactor())
        mirror = Mirror()
        position, seq = "", 0
        base = 1_800_000_000_000
        for i, payload in enumerate(payloads(source)):
            now = base + i * 1000
            events = norm.feed({"_received_at": now, **payload}, now)
            if i % 25 == 24:
                events += norm.expire(now)  # as ingest does between batches
            sets, dels, stats = norm.take_changes()
            token = f"{i}"
            join_set, join_del = norm.state()
            published = [json.dumps(e) for e in events]
            checkpoint = {"pos": token, **join_set}
            done = await committer.commit(position, "e1", checkpoint, published, sets, dels, stats, join_del)
            position = token
            for _, entry in await redis.xrange(keys.log, f"{seq + 1}-0", "+"):
                mirror.apply(json.loads(entry["envelope"])["data"])
            seq = done.seq
            alive = await redis.hgetall(keys.alive)
            assert mirror.records == hash_view(alive), f"after payload {i}: {payload}"
            assert mirror.counters == hash_counters(alive), f"counters after payload {i}: {payload}"
        assert mirror.problems == []
        # The join state is written field by field as it changes: restored from Redis, it is what ingest holds.
        restarted = Normalizer(source="real", pricing=Pricing.load(), redact=Redactor())
        alive = [json.loads(v) for v in (await redis.hgetall(keys.alive)).values()]
        restarted.restore(await redis.hgetall(keys.checkpoint("real")), alive)
        assert restarted.graph.open_calls == norm.graph.open_calls
        assert list(restarted.graph.ended) == list(norm.graph.ended)
    finally:
        await redis.aclose()


def _read(server: RedisServer, prefix: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The whole log stream's events and the alive hash, as any redis client reads them."""
    with SyncRedis.from_url(server.url, decode_responses=True) as client:
        entries = client.xrange(Keys(prefix).log, "-", "+")
        alive = client.hgetall(Keys(prefix).alive)
    return [json.loads(fields["envelope"])["data"] for _, fields in entries], alive


@reliability(
    "Real Claude Code installs",
    "every real payload, end to end",
    injected="each real install's payloads through the real hook into a real ingest and redis-server",
    checked="none rejected; every sub-agent tool event on its agent; one node per Agent/Task call; ended "
    "sessions leave nothing alive; the log stream replayed equals the alive hash",
)
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name.split("__")[0])
def test_real_install_through_hook_ingest_and_redis(
    redis_server: RedisServer, prefix: str, events_file: Path, source: Path
) -> None:
    keys = Keys(prefix)
    lines = source.read_text(encoding="utf-8").splitlines()
    events_file.parent.mkdir(parents=True, exist_ok=True)
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
    try:
        for line in lines:
            result = run_hook(line, events_file)
            assert result.returncode == 0 and not result.stderr, result
        stat = lambda name: int(redis_server.cli("HGET", keys.stats, name).strip() or 0)  # noqa: E731
        wait_for(lambda: stat("lines") == len(lines), timeout=30, what=f"{len(lines)} lines ingested")
        assert stat("rejected") == 0, redis_server.cli("HGETALL", keys.stats)
    finally:
        ingest.stop()
    sent = [json.loads(line) for line in lines]
    events, alive = _read(redis_server, prefix)
    mirror = Mirror().apply_all(events)
    assert mirror.problems == []
    assert mirror.records == hash_view(alive)

    # Every tool event fired inside a sub-agent is published on that agent.
    tool_hooks = {"PreToolUse": "tool_use", "PostToolUse": "tool_done", "PostToolUseFailure": "tool_fail"}
    wanted = Counter(
        (tool_hooks[p["hook_event_name"]], p["tool_use_id"], p["agent_id"])
        for p in sent
        if p["hook_event_name"] in tool_hooks and p.get("agent_id") and p.get("tool_use_id")
    )
    kinds = {"tool_use", "skill_use", "tool_done", "tool_fail"}
    published = Counter(
        (
            "tool_use" if e["type"] == "skill_use" else e["type"],
            e["tool_use_id"],
            mirror.final_id(e["session_id"], e["agent_id"]),
        )
        for e in events
        if e["type"] in kinds and e.get("tool_use_id")
    )
    assert wanted - published == Counter()

    # Every spawn call gives exactly one node.
    spawn_calls = [p for p in sent if p["hook_event_name"] == "PreToolUse" and p["tool_name"] in ("Agent", "Task")]
    spawns = [e for e in events if e["type"] == "agent_spawn" and e["agent_id"] != MAIN_AGENT]
    for call in spawn_calls:
        if call.get("tool_use_id"):
            assert [e["tool_use_id"] for e in spawns].count(call["tool_use_id"]) == 1, call["tool_use_id"]
    assert len([e for e in spawns if e["provisional"]]) == len(spawn_calls)

    # Sessions that ended leave nothing alive.
    ended = {p["session_id"] for p in sent if p["hook_event_name"] == "SessionEnd"}
    assert [r for r in mirror.records.values() if r["session_id"] in ended] == []
