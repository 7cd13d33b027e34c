"""Sources and their leases: one live ingest per events file, writers fenced when they lose their lease, and
the agents of an ingest that is gone ended as lost, once (ingest/lease.py; team-scale.md §5)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from redis.asyncio import Redis

from contract import Keys
from contract.sources import read_sources
from ingest.commit import Committer, Fenced
from ingest.lease import REAP_REASON, Lease, Reaper, process_identity
from ingest.settings import Settings, SettingsError, default_host, from_args
from tests.stack import PYTHON, ROOT, Proc, RedisServer, wait_for
from tests.test_faults import append_json
from tests.viewer import ViewerModel

reliability = pytest.mark.reliability

TTL = "3"  # seconds: real-process tests keep leases short


# ---- names


def test_a_source_is_named_by_host_and_file() -> None:
    path = Path("/events/events.jsonl")
    a, b = Settings(events_file=path, host="laptop"), Settings(events_file=path, host="ci-7")
    assert a.source_name.startswith("laptop:events.jsonl-") and b.source_name.startswith("ci-7:events.jsonl-")
    assert a.source_name != b.source_name  # the same path on two machines: two sources, two checkpoints
    assert Settings(events_file=path, host="x", source="mine").source_name == "mine"
    weird = Settings(events_file=Path("/e/{a b}.jsonl"), host="h").source_name
    assert not set(weird) & set("{} ")  # no cluster hash tag, nothing a key name should not hold
    assert default_host({"AGENTWATCH_HOST": "my laptop:{1}"}) == "my-laptop-1"
    assert default_host({}) != ""


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--source", "a{b}"], "--source has value 'a{b}'"),
        (["--lease-ttl", "0.5"], "--lease-ttl has value '0.5'"),
        (["--lease-ttl", "soon"], "--lease-ttl has value 'soon'"),
    ],
)
def test_bad_source_and_lease_flags_are_one_line(flags: list[str], message: str, tmp_path: Path) -> None:
    import argparse

    from ingest.settings import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser, env={})
    ns = parser.parse_args(["--events-file", str(tmp_path / "e.jsonl"), *flags])
    with pytest.raises(SettingsError, match=message.replace("{", r"\{").replace("}", r"\}")):
        from_args(ns, "redis://x", "p")


def test_process_identity_names_one_process() -> None:
    mine = process_identity(os.getpid())
    assert mine and mine.split("/")[2] == str(os.getpid())
    assert process_identity(2**22 + 1) == ""  # no such pid


# ---- the scripts, on a real Redis and on the embedded one


@pytest.fixture(params=["real", "embedded"])
async def client(request: pytest.FixtureRequest, redis_server: RedisServer) -> Any:
    if request.param == "real":
        redis: Redis = Redis.from_url(redis_server.url)
    else:
        redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    try:
        yield redis
    finally:
        await redis.aclose()


def record(session: str, agent: str, source: str, **extra: Any) -> str:
    base = {"session_id": session, "agent_id": agent, "parent_id": None if agent == "main" else "main"}
    return json.dumps({**base, "agent_type": "Explore", "spawned_at": 1000, "waited_ms": 0, "source": source, **extra})


async def test_a_commit_from_a_writer_that_lost_its_lease_is_fenced(client: Redis, prefix: str) -> None:
    keys = Keys(prefix)
    old, new = Lease(client, keys, "src", "h1", 30), Lease(client, keys, "src", "h2", 30)
    assert await old.acquire() is None
    writer = Committer(client, keys, "src", 100)
    writer.lease = old.token
    await writer.commit("", "e1", {"pos": "1:1:10"}, ['{"type":"prompt"}'], {}, [], {})
    holder = await new.acquire()
    assert holder is not None and holder.owner == old.owner and holder.host == "h1"
    assert await new.acquire(takeover=holder) is None  # the exact holder and expiry seen: taken over
    with pytest.raises(Fenced) as fenced:
        await writer.commit("1:1:10", "e1", {"pos": "1:1:20"}, ['{"type":"prompt"}'], {"s/a": "{}"}, [], {})
    assert fenced.value.owner == new.owner
    assert await client.hget(keys.meta, "seq") in (b"1", "1") and await client.xlen(keys.log) == 1
    assert not await client.hexists(keys.alive, "s/a") and await client.hget(keys.checkpoint("src"), "off") is None
    unleased = Committer(client, keys, "src", 100)  # holds no lease while someone does: fenced too
    with pytest.raises(Fenced):
        await unleased.commit("1:1:10", "e1", {"pos": "1:1:20"}, [], {}, [], {})
    assert await old.renew(None) == new.owner  # its heartbeat learns it too
    assert not await old.release()  # and cannot clear a lease that is not its own


async def test_a_held_lease_is_refused_and_a_released_one_taken(client: Redis, prefix: str) -> None:
    keys = Keys(prefix)
    first, second = Lease(client, keys, "src", "h", 30), Lease(client, keys, "src", "h", 30)
    assert await first.acquire() is None
    held = await second.acquire()
    assert held is not None and held.owner == first.owner and 29_000 < held.left_ms <= 30_000
    assert await first.renew(123) is None
    assert await first.release()
    [row] = await read_sources(client, keys)
    assert row["lease"] == "released" and row["owner"] is None and row["expires_in_s"] > 29
    assert await second.acquire() is None and second.gen == str(int(first.gen) + 1)
    [row] = await read_sources(client, keys)
    assert (row["lease"], row["owner"], row["host"]) == ("held", second.owner, "h")


async def test_an_expired_source_is_reaped_once_like_a_commit(client: Redis, prefix: str) -> None:
    """Its agents end as lost, its orchestrator's session ends, viewers applying the log match the hash."""
    keys = Keys(prefix)
    gone, alive = Lease(client, keys, "gone", "h1", 0.3), Lease(client, keys, "alive", "h2", 30)
    assert await gone.acquire() is None and await alive.acquire() is None
    for lease, session in ((gone, "s1"), (alive, "s2")):
        writer = Committer(client, keys, lease.source, 100)
        writer.lease = lease.token
        records = {f"{session}/main": record(session, "main", lease.source)}
        records[f"{session}/a1"] = record(session, "a1", lease.source, waiting="permission", waiting_since=2000)
        records[f"{session}/a2"] = record(session, "a2", lease.source)
        await writer.commit("", "e1", {"pos": "1:1:1"}, ['{"type":"prompt","session_id":"x"}'], records, [], {})
    viewer = ViewerModel()
    snapshot = {k.decode(): json.loads(v) for k, v in (await _hgetall(client, keys.alive)).items()}
    viewer.apply({"type": "snapshot", "seq": 2, "epoch": "e1", "alive": list(snapshot.values())})
    reaper = Reaper(client, keys, "alive", 100)
    done, wait = await reaper.run()
    assert done == [] and wait is not None and 0 < wait <= 0.3  # wakes when "gone" expires, not a heartbeat later
    await asyncio.sleep(wait + 0.05)
    done, _ = await reaper.run()
    assert [(d.source, d.agents, d.events) for d in done] == [("gone", 3, 3)]
    assert (await reaper.run())[0] == [] and await reaper.reap("gone") is None  # once
    for _, fields in await client.xrange(keys.log, "3-0", "+"):
        viewer.apply(json.loads(next(iter(fields.values()))))
    assert viewer.keys == {"s2/main", "s2/a1", "s2/a2"} == {k.decode() for k in await _hkeys(client, keys.alive)}
    ends = [(e["type"], e["agent_id"], e.get("outcome"), e["reason"]) for e in viewer.events]
    assert ends[-1] == ("session_end", "main", None, REAP_REASON)  # the orchestrator last
    assert sorted(ends[:-1]) == [("agent_done", "a1", "lost", REAP_REASON), ("agent_done", "a2", "lost", REAP_REASON)]
    waited = next(e for e in viewer.events if e["agent_id"] == "a1")["waited_ms"]
    assert waited > 1_000_000  # the open permission wait counts up to the reap
    alive_row, gone_row = await read_sources(client, keys)  # in name order
    assert gone_row["lease"] == "expired" and gone_row["expires_in_s"] < 0 and alive_row["lease"] == "held"
    assert 0 < await client.ttl(keys.checkpoint("gone")) <= 7 * 86400  # a machine that left is forgotten in days
    assert await gone.renew(None) == ""  # the reaped owner learns it lost the lease
    assert await gone.acquire() is None and await client.ttl(keys.checkpoint("gone")) == -1  # back: kept again


async def _hgetall(client: Redis, key: str) -> dict[bytes, bytes]:
    raw: dict[Any, Any] = await client.hgetall(key)
    return {k if isinstance(k, bytes) else k.encode(): v for k, v in raw.items()}


async def _hkeys(client: Redis, key: str) -> list[bytes]:
    return [k if isinstance(k, bytes) else k.encode() for k in await client.hkeys(key)]


# ---- real ingest processes


def ingest(redis: RedisServer, events_file: Path, prefix: str, *extra: str, host: str = "host-a") -> Proc:
    args = [PYTHON, "-m", "ingest", "--redis-url", redis.url, "--events-file", str(events_file), "--prefix", prefix]
    proc = Proc([*args, "--lease-ttl", TTL, *extra], env={"AGENTWATCH_HOST": host})
    proc.wait_line("holding the lease")
    after = next(i for i, line in enumerate(proc.lines) if "holding the lease" in line)
    proc.wait_line(str(events_file), start=after + 1)  # where it reads from: lines appended now are new ones
    return proc


def tool_calls(session: str, agent: str, ids: list[str]) -> list[dict[str, Any]]:
    base = {"session_id": session, "_received_at": int(time.time() * 1000)}
    spawn = {**base, "hook_event_name": "SubagentStart", "agent_id": agent, "agent_type": "Explore"}
    calls = [
        {**base, "hook_event_name": "PreToolUse", "agent_id": agent, "tool_name": "Read", "tool_use_id": i} for i in ids
    ]
    return [spawn, *calls]


def log_data(server: RedisServer, prefix: str) -> list[dict[str, Any]]:
    out = server.cli("--raw", "XRANGE", Keys(prefix).log, "-", "+")
    return [json.loads(line)["data"] for line in out.splitlines() if line.startswith("{")]


def tool_ids(server: RedisServer, prefix: str) -> Counter[str]:
    return Counter(d["tool_use_id"] for d in log_data(server, prefix) if d["type"] == "tool_use")


def alive_keys(server: RedisServer, prefix: str) -> set[str]:
    return set(server.cli("HKEYS", Keys(prefix).alive).split())


@reliability(
    "Team scale",
    "a second ingest on a held source",
    injected="a second ingest process started on the file (same host, same source) a live ingest reads",
    checked="it refuses at start with one line naming the holder's owner and host, exit 2; the first goes on",
)
def test_second_ingest_on_a_held_source_refuses_with_one_line(
    redis_server: RedisServer, prefix: str, events_file: Path
) -> None:
    events_file.parent.mkdir(parents=True)
    events_file.write_bytes(b"")
    first = ingest(redis_server, events_file, prefix)
    try:
        owner = first.wait_line("holding the lease").split(" as ")[1].split(" ")[0]
        args = [PYTHON, "-m", "ingest", "--redis-url", redis_server.url, "--events-file", str(events_file)]
        second = subprocess.run(
            [*args, "--prefix", prefix, "--lease-ttl", TTL],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
            env={**os.environ, "AGENTWATCH_HOST": "host-a"},
        )
        assert second.returncode == 2
        refusals = [line for line in second.stderr.splitlines() if "is held by" in line]
        assert len(refusals) == 1 and refusals == second.stderr.strip().splitlines()[-1:]
        assert f"is held by {owner} on host host-a" in refusals[0]
        append_json(events_file, tool_calls("s1", "a1", ["t1", "t2"]))
        wait_for(lambda: tool_ids(redis_server, prefix) == Counter({"t1": 1, "t2": 1}), what="the first goes on")
    finally:
        assert first.stop() == 0


@reliability(
    "Team scale",
    "a foreign checkpoint",
    injected="the source's checkpoint written on another host (or, without a host, for another inode and first "
    "line), 50 old lines in the file, ingest started with the default --from end",
    checked="one log line says so and that it is replaced, not followed; no old line published, the new ones once",
)
@pytest.mark.parametrize("kind", ["other host", "other inode"])
def test_foreign_checkpoint_is_reported_and_replaced(
    redis_server: RedisServer, prefix: str, events_file: Path, kind: str
) -> None:
    events_file.parent.mkdir(parents=True)
    append_json(events_file, tool_calls("old", "a0", [f"old-{i}" for i in range(50)]))
    source = Settings(events_file=events_file, host="host-a").source_name
    planted = {"pos": "9:9:40", "dev": "9", "ino": "9", "fp": "f" * 32, "off": "40", "state": "{}"}
    planted |= {"path": str(events_file), "host": "elsewhere"} if kind == "other host" else {}
    redis_server.cli("HSET", Keys(prefix).checkpoint(source), *[x for kv in planted.items() for x in kv])
    proc = ingest(redis_server, events_file, prefix)
    try:
        line = proc.wait_line("is not this file's")
        reason = "written on host elsewhere" if kind == "other host" else "another file's inode and first line"
        assert reason in line and "replacing it, not following it" in line and "from its end" in line
        append_json(events_file, tool_calls("new", "a1", ["n1", "n2", "n3"]))
        wait_for(lambda: sum(tool_ids(redis_server, prefix).values()) >= 3, what="the new lines")
        time.sleep(0.3)  # anything else would come in the same drain
        assert tool_ids(redis_server, prefix) == Counter({"n1": 1, "n2": 1, "n3": 1})
        saved = redis_server.cli("HGET", Keys(prefix).checkpoint(source), "ino").strip()
        assert saved == str(events_file.stat().st_ino)  # replaced by ours
    finally:
        assert proc.stop() == 0


@reliability(
    "Team scale",
    "a paused ingest loses its lease",
    injected="ingest SIGSTOPped past its lease TTL (3 s), a second ingest started on the file, lines appended, "
    "the first continued (SIGCONT)",
    checked="the second reaps the first's agents (lost) and takes the lease; the first's commit is FENCED (nothing "
    "written) and it stops with one line, exit 2; every line once",
)
def test_paused_ingest_is_fenced_and_stops(redis_server: RedisServer, prefix: str, events_file: Path) -> None:
    events_file.parent.mkdir(parents=True)
    events_file.write_bytes(b"")
    first = ingest(redis_server, events_file, prefix)
    second: Proc | None = None
    try:
        append_json(events_file, tool_calls("s1", "a1", ["t1"]))
        wait_for(lambda: tool_ids(redis_server, prefix) == Counter({"t1": 1}), what="t1")
        os.kill(first.proc.pid, signal.SIGSTOP)
        time.sleep(float(TTL) + 0.5)
        second = ingest(redis_server, events_file, prefix)
        second.wait_line("ended its 2 alive agents as lost")
        second.wait_line("holding the lease")
        append_json(events_file, tool_calls("s1", "a2", ["t2", "t3"]))
        wait_for(lambda: tool_ids(redis_server, prefix)["t3"] == 1, what="the second publishes")
        os.kill(first.proc.pid, signal.SIGCONT)
        assert first.proc.wait(15) == 2
        [line] = [x for x in first.lines if x.startswith("agentwatch ingest: stopping")]
        assert f"is held by {second.wait_line('holding the lease').split(' as ')[1].split(' ')[0]}" in line
        append_json(events_file, tool_calls("s1", "a2", ["t4"]))
        wait_for(lambda: tool_ids(redis_server, prefix)["t4"] == 1, what="the second goes on")
        assert tool_ids(redis_server, prefix) == Counter({"t1": 1, "t2": 1, "t3": 1, "t4": 1})
    finally:
        if first.proc.poll() is None:
            os.kill(first.proc.pid, signal.SIGCONT)
        first.stop()
        if second is not None:
            assert second.stop() == 0


@reliability(
    "Team scale",
    "one ingest, restarted",
    injected="the only ingest stopped (SIGTERM) and restarted within the TTL; kill -9 and restarted at once; "
    "kill -9 and restarted after the TTL",
    checked="within the TTL (clean or killed) its agents go on, none ended; after the TTL it ends its own "
    "leftover agents as lost once, then reads on",
)
def test_restart_keeps_agents_unless_the_lease_expired(
    redis_server: RedisServer, prefix: str, events_file: Path
) -> None:
    events_file.parent.mkdir(parents=True)
    events_file.write_bytes(b"")
    proc = ingest(redis_server, events_file, prefix)
    try:
        append_json(events_file, tool_calls("s1", "a1", ["t1"]))
        wait_for(lambda: alive_keys(redis_server, prefix) == {"s1/main", "s1/a1"}, what="agents")
        assert proc.stop() == 0
        assert "released the lease" in proc.output
        proc = ingest(redis_server, events_file, prefix)  # within the TTL: taken back, agents restored
        proc.wait_line("holding the lease")
        proc.kill()
        proc = ingest(redis_server, events_file, prefix)  # its holder is gone from this machine: taken over
        proc.wait_line("is gone: taking its lease over")
        append_json(events_file, tool_calls("s1", "a1", ["t2"]))
        wait_for(lambda: tool_ids(redis_server, prefix)["t2"] == 1, what="t2")
        assert not [d for d in log_data(redis_server, prefix) if d["type"] in ("agent_done", "session_end")]
        proc.kill()
        time.sleep(float(TTL) + 0.3)
        assert alive_keys(redis_server, prefix) == {"s1/main", "s1/a1"}  # nobody alive to reap them yet
        proc = ingest(redis_server, events_file, prefix)
        proc.wait_line("ended its 2 alive agents as lost")
        ends = [(d["type"], d["agent_id"]) for d in log_data(redis_server, prefix) if d.get("reason") == REAP_REASON]
        assert ends == [("agent_done", "a1"), ("session_end", "main")]
        assert alive_keys(redis_server, prefix) == set()
        append_json(events_file, tool_calls("s1", "a3", ["t3"]))
        wait_for(lambda: alive_keys(redis_server, prefix) == {"s1/main", "s1/a3"}, what="reads on")
    finally:
        proc.stop()


def agentwatch_status(server: RedisServer | str, prefix: str, *flags: str, host: str = "host-a") -> Any:
    url = server if isinstance(server, str) else server.url
    return subprocess.run(
        [PYTHON, "-m", "agentwatch", "status", "--redis-url", url, "--prefix", prefix, *flags],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        env={**os.environ, "AGENTWATCH_HOST": host},
    )


def test_status_shows_each_source_with_its_lease_and_lag(
    redis_server: RedisServer, prefix: str, events_file: Path
) -> None:
    empty = agentwatch_status(redis_server, prefix)
    assert empty.returncode == 0 and empty.stdout.startswith("no sources")
    events_file.parent.mkdir(parents=True)
    events_file.write_bytes(b"")
    proc = ingest(redis_server, events_file, prefix)
    append_json(events_file, tool_calls("s1", "a1", ["t1"]))
    wait_for(lambda: tool_ids(redis_server, prefix)["t1"] == 1, what="t1")
    table = agentwatch_status(redis_server, prefix).stdout.splitlines()
    assert table[0].split() == ["SOURCE", "HOST", "LEASE", "LAST", "COMMIT", "LAG"] and len(table) == 2
    assert "host-a" in table[1] and "held by host-a:" in table[1] and table[1].endswith("0 bytes")
    assert proc.stop() == 0
    append_json(events_file, [{"session_id": "s1", "hook_event_name": "Stop"}])
    [row] = json.loads(agentwatch_status(redis_server, prefix, "--json").stdout)
    assert row["lease"] == "released" and row["lag_bytes"] == len(b'{"session_id": "s1", "hook_event_name": "Stop"}\n')
    [row] = json.loads(agentwatch_status(redis_server, prefix, "--json", host="elsewhere").stdout)
    assert row["lag_bytes"] is None  # not this machine's file, and nobody holds the lease to report it
    down = agentwatch_status("redis://127.0.0.1:1/0", prefix)
    assert down.returncode == 1 and len(down.stderr.strip().splitlines()) == 1 and "cannot read Redis" in down.stderr
    bad = agentwatch_status("http://x", prefix)
    assert bad.returncode == 2 and "--redis-url has value 'http://x'" in bad.stderr
