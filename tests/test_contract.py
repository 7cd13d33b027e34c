"""The contract between ingest and relay: the Redis names and message shapes both sides read from one module."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import fakeredis
import pytest
from redis.asyncio import Redis

from contract import LOG_FIELD, VIEW_FIELDS, AliveRecord, Keys, envelope_prefix, safe_url
from ingest.agent import Agent
from ingest.commit import Committer
from relay.hub import Hub

ROOT = Path(__file__).resolve().parent.parent


def imports_of(package: str) -> set[str]:
    names: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_ingest_and_relay_never_import_each_other() -> None:
    assert "relay" not in imports_of("ingest")
    assert "ingest" not in imports_of("relay")
    assert "contract" in imports_of("ingest") and "contract" in imports_of("relay")


def test_redis_names_live_only_in_the_contract() -> None:
    for package in ("ingest", "relay"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            for suffix in (":events", ":alive", ":meta", ":log", ":stats", ":ingest:"):
                assert f'"{suffix}' not in text and f"}}{suffix}" not in text, f"{path} spells a Redis name itself"


def test_names_are_under_the_prefix() -> None:
    keys = Keys("team-a")
    assert (keys.channel, keys.alive, keys.meta, keys.log, keys.stats, keys.checkpoint("src")) == (
        "team-a:events",
        "team-a:alive",
        "team-a:meta",
        "team-a:log",
        "team-a:stats",
        "team-a:ingest:src",
    )


@pytest.mark.parametrize("backend", ["real", "embedded"])
async def test_what_ingest_writes_is_what_the_relay_reads(backend: str, redis_server: object, prefix: str) -> None:
    if backend == "real":
        writer: Redis = Redis.from_url(redis_server.url)  # type: ignore[attr-defined]
        reader: Redis = Redis.from_url(redis_server.url)  # type: ignore[attr-defined]
    else:
        server = fakeredis.FakeServer()
        writer, reader = fakeredis.FakeAsyncRedis(server=server), fakeredis.FakeAsyncRedis(server=server)
    keys = Keys(prefix)
    try:
        committer = Committer(writer, keys, "src", stream_cap=100)
        record = Agent("s", "main", None, "main", None, None, None, 1, 1).record("src")
        # What ingest writes carries every field the contract names (plus its own bookkeeping).
        assert set(AliveRecord.__annotations__) <= set(record) and set(VIEW_FIELDS) <= set(AliveRecord.__annotations__)
        event = {"type": "session_start", "ts": 1, "session_id": "s", "agent_id": "main"}
        done = await committer.commit(
            "", "e1", {"pos": "1:2:3"}, [json.dumps(event)], {"s/main": json.dumps(record)}, [], {"lines": 1}
        )
        assert (done.seq, done.epoch, done.fresh_epoch) == (1, "e1", True)
        [(entry_id, fields)] = await reader.xrange(keys.log)
        envelope = fields[LOG_FIELD.encode()].decode()
        assert entry_id == b"1-0"
        assert envelope.startswith(envelope_prefix(1, "e1"))
        assert json.loads(envelope) == {"type": "event", "seq": 1, "epoch": "e1", "data": event}
        hub = Hub(reader, keys)
        snapshot = await hub.snapshot()
        assert (snapshot.seq, snapshot.epoch, snapshot.alive) == (1, "e1", [record])
        assert await hub.resume(0, "e1", 100) == [(1, envelope)]
        assert await hub.resume(0, "other-epoch", 100) is None
    finally:
        await writer.aclose()
        await reader.aclose()


def test_passwords_never_reach_logs() -> None:
    assert safe_url("redis://user:hunter2@host:6379/0") == "redis://user:***@host:6379/0"
    assert safe_url("rediss://:hunter2@host/0") == "rediss://:***@host/0"
    assert safe_url("redis://host:6379/0") == "redis://host:6379/0"
