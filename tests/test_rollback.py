"""Redis rolled back under a running stack: a failover to a lagging replica, or a restart from an older
snapshot, loses writes that viewers were already sent. Never a silent gap: viewers resync, and ingest
publishes again, from the checkpoint that survived, what Redis lost (../shared/reference/team-scale.md §4)."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from contract import Keys
from tests.stack import RedisServer, running_stack, wait_for
from tests.test_faults import _converge, append_json, hgetall_keys
from tests.test_ingest import seq
from tests.viewer import ViewerModel, follow

reliability = pytest.mark.reliability


def calls(session: str, agent: str, first: int, count: int) -> list[dict[str, object]]:
    spawn = {"session_id": session, "hook_event_name": "SubagentStart", "agent_id": agent, "agent_type": "Explore"}
    return [spawn] + [
        {
            "session_id": session,
            "hook_event_name": "PreToolUse",
            "agent_id": agent,
            "agent_type": "Explore",
            "tool_name": "Read",
            "tool_use_id": f"tu-{i}",
        }  # fmt: skip
        for i in range(first, first + count)
    ]


def logged_tool_ids(server: RedisServer, prefix: str) -> list[str]:
    out = server.cli("--raw", "XRANGE", Keys(prefix).log, "-", "+")
    data = [json.loads(line)["data"] for line in out.splitlines() if line.startswith("{")]
    return [d["tool_use_id"] for d in data if d["type"] == "tool_use"]


@reliability(
    "Faults",
    "seq goes back within an epoch",
    injected="the meta seq set 10 back by hand (a restore or a failover the replid check cannot see), then new agents",
    checked="the relay notices, every viewer gets a reset snapshot and converges on HGETALL; nothing is dropped "
    "as an old duplicate",
)
async def test_seq_going_back_resets_every_viewer(own_redis: RedisServer, prefix: str, events_file: Path) -> None:
    stop = asyncio.Event()
    models = [ViewerModel() for _ in range(2)]
    with running_stack(own_redis.url, events_file, prefix) as stack:
        tasks = [asyncio.create_task(follow(stack.ws_url, m, stop)) for m in models]
        events_file.parent.mkdir(parents=True, exist_ok=True)
        append_json(events_file, calls("s1", "a1", 0, 20))
        for m in models:
            await _converge(m, own_redis, prefix)
        top = seq(own_redis, prefix)
        own_redis.cli("HSET", Keys(prefix).meta, "seq", str(top - 10))
        await asyncio.sleep(1.5)  # the relay checks seq every second when quiet
        append_json(events_file, calls("s1", "a2", 100, 3))  # reuses seqs the viewers already saw
        await asyncio.to_thread(wait_for, lambda: "s1/a2" in hgetall_keys(own_redis, prefix), 15, 0.05, "a2")
        for m in models:
            await _converge(m, own_redis, prefix)
        stop.set()
        await asyncio.gather(*tasks)
    for m in models:
        assert m.resets >= 1
        assert {k.split("/")[1] for k in m.keys} == {"main", "a1", "a2"}


@reliability(
    "Faults",
    "Redis restarted from an older snapshot",
    injected="SAVE, 30 more calls committed and sent to viewers, then redis-server killed (-9) and restarted "
    "from that snapshot",
    checked="a new epoch (new master_replid); viewers reset and converge; ingest publishes again from the "
    "checkpoint that survived: every call in the log exactly once",
)
async def test_restart_from_an_older_snapshot(prefix: str, events_file: Path) -> None:
    server = RedisServer()
    server.start()
    stop = asyncio.Event()
    models = [ViewerModel() for _ in range(2)]
    try:
        with running_stack(server.url, events_file, prefix) as stack:
            tasks = [asyncio.create_task(follow(stack.ws_url, m, stop)) for m in models]
            events_file.parent.mkdir(parents=True, exist_ok=True)
            append_json(events_file, calls("s1", "a1", 0, 20))
            for m in models:
                await _converge(m, server, prefix)
            epoch = models[0].epoch
            assert server.cli("SAVE").strip() == "OK"
            append_json(events_file, calls("s1", "a2", 20, 30))
            for m in models:
                await _converge(m, server, prefix)  # the viewers saw what is about to be lost
            server.signal(signal.SIGKILL)
            assert server.proc is not None
            server.proc.wait(10)
            server.proc = None
            server.start()  # loads the older dump.rdb
            append_json(events_file, calls("s1", "a3", 50, 5))
            await asyncio.to_thread(wait_for, lambda: "s1/a3" in hgetall_keys(server, prefix), 30, 0.05, "a3")
            for m in models:
                await _converge(m, server, prefix)
            stop.set()
            await asyncio.gather(*tasks)
        ids = logged_tool_ids(server, prefix)
    finally:
        server.close()
    assert Counter(ids) == Counter(f"tu-{i}" for i in range(55))  # every call once, none lost, none twice
    for m in models:
        assert m.epoch != epoch and m.resets >= 1
        assert {k.split("/")[1] for k in m.keys} == {"main", "a1", "a2", "a3"}
