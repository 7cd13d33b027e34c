"""Faults the pipeline must survive with nothing lost or duplicated: real redis-server, ingest and relay processes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from contract import Keys
from tests.stack import RedisServer, running_stack, start_ingest, start_relay, wait_for
from tests.test_ingest import seq, stream_tool_ids, tool_line
from tests.viewer import ViewerModel, follow

reliability = pytest.mark.reliability


def lines(path: Path, start: int, count: int) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(tool_line(i) for i in range(start, start + count)))


def hgetall_keys(server: RedisServer, prefix: str) -> set[str]:
    out = server.cli("HKEYS", Keys(prefix).alive).split()
    return set(out)


def agent_lines(session: str, agent: str, done: bool) -> list[dict[str, Any]]:
    base = {"session_id": session, "_received_at": int(time.time() * 1000)}
    out = [
        {**base, "hook_event_name": "SubagentStart", "agent_id": agent, "agent_type": "Explore"},
        {**base, "hook_event_name": "PreToolUse", "agent_id": agent, "tool_name": "Read", "tool_use_id": f"{agent}-r"},
    ]
    if done:
        out.append({**base, "hook_event_name": "SubagentStop", "agent_id": agent, "last_assistant_message": "ok"})
    return out


def append_json(path: Path, payloads: list[dict[str, Any]]) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(json.dumps(p).encode() + b"\n" for p in payloads))


@reliability(
    "Faults",
    "ingest SIGKILLed 20 times",
    injected="SIGKILL at random points of a 20 000-line stream, restart",
    checked="stream holds every line once, in file order",
)
def test_ingest_killed_20_times_keeps_every_line_once(
    redis_server: RedisServer, prefix: str, events_file: Path
) -> None:
    events_file.parent.mkdir(parents=True)
    total = 20_000
    lines(events_file, 0, total)
    rng = random.Random(20)
    cap = ("--stream-cap", "30000")
    for _ in range(20):
        ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start", *cap)
        time.sleep(rng.uniform(0, 0.15))  # a random point of the catch-up, not an event to wait for
        ingest.kill()
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start", *cap)
    try:
        wait_for(lambda: seq(redis_server, prefix) >= total + 1, timeout=60, what="every line committed")
    finally:
        ingest.stop()
    assert stream_tool_ids(redis_server, prefix) == [f"tu-{i}" for i in range(total)]


@reliability(
    "Faults",
    "rotation, truncation, recreation while running",
    injected="rename rotation, truncate, delete+recreate, directory removed and recreated, file absent at start",
    checked="every line written after each change published once, none twice",
)
def test_file_changes_while_running(redis_server: RedisServer, prefix: str, tmp_path: Path) -> None:
    folder = tmp_path / "hook"
    path = folder / "events.jsonl"
    ingest = start_ingest(redis_server.url, path, prefix, "--from", "start", "--poll-interval", "0.2")
    expected: list[int] = []
    n = 0

    def write(count: int) -> None:
        nonlocal n
        folder.mkdir(exist_ok=True)
        lines(path, n, count)
        expected.extend(range(n, n + count))
        n += count
        wait_for(lambda: seq(redis_server, prefix) >= len(expected) + 1, timeout=15, what=f"{len(expected)} lines")

    try:
        write(50)  # the file did not exist when ingest started
        os.rename(path, folder / "events.jsonl.1")  # rename rotation
        write(50)
        os.truncate(path, 0)  # truncation
        write(50)
        path.unlink()  # delete and recreate (the inode may be reused)
        write(50)
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()  # the directory itself removed and recreated
        write(50)
    finally:
        ingest.stop()
    assert stream_tool_ids(redis_server, prefix) == [f"tu-{i}" for i in expected]


@reliability(
    "Faults",
    "rotation while stopped",
    injected="ingest stopped, lines appended, file renamed, new file written, ingest started",
    checked="old file drained from its checkpoint, new file read from 0, each line once",
)
def test_rotation_while_stopped(redis_server: RedisServer, prefix: str, events_file: Path) -> None:
    events_file.parent.mkdir(parents=True)
    lines(events_file, 0, 100)
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
    wait_for(lambda: seq(redis_server, prefix) == 101, what="first 100")
    assert ingest.stop() == 0
    lines(events_file, 100, 100)
    os.rename(events_file, events_file.with_name("events.jsonl.1"))
    lines(events_file, 200, 100)
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
    try:
        wait_for(lambda: seq(redis_server, prefix) == 301, what="all 300")
        assert "draining rotated" in ingest.output
    finally:
        ingest.stop()
    assert stream_tool_ids(redis_server, prefix) == [f"tu-{i}" for i in range(300)]


@reliability(
    "Faults",
    "truncate and regrow while stopped",
    injected="file rewritten larger than the old offset while ingest was stopped",
    checked="fingerprint mismatch: read from 0, no stale offset applied",
)
def test_truncated_and_regrown_while_stopped(redis_server: RedisServer, prefix: str, events_file: Path) -> None:
    events_file.parent.mkdir(parents=True)
    lines(events_file, 0, 10)
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
    wait_for(lambda: seq(redis_server, prefix) == 11, what="first 10")
    ingest.stop()
    with open(events_file, "wb") as f:  # same inode, new content, longer than before
        f.write(b"".join(tool_line(i) for i in range(100, 130)))
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
    try:
        wait_for(lambda: seq(redis_server, prefix) == 41, what="the rewritten file")
    finally:
        ingest.stop()
    assert stream_tool_ids(redis_server, prefix) == [f"tu-{i}" for i in [*range(10), *range(100, 130)]]


async def _connected(models: list[ViewerModel]) -> None:
    """Every viewer has its snapshot: what is written from now on reaches it as events."""
    async with asyncio.timeout(15):
        await asyncio.gather(*(m.connected.wait() for m in models))


async def _converge(model: ViewerModel, server: RedisServer, prefix: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if model.seq == seq(server, prefix) and model.keys == hgetall_keys(server, prefix):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"viewer at seq {model.seq} with {sorted(model.keys)}; Redis at {seq(server, prefix)} "
        f"with {sorted(hgetall_keys(server, prefix))}"
    )


@reliability(
    "Faults",
    "Redis stopped for 10 s",
    injected="redis-server stopped 10 s while lines and agents keep arriving, then started (append-only persistence)",
    checked="ingest catches up; relay resubscribes and fills the gap; "
    "viewers end with the HGETALL alive set, no hole, no duplicate",
)
async def test_redis_down_10s_viewers_converge(tmp_path: Path, prefix: str, events_file: Path) -> None:
    server = RedisServer(extra=("--appendonly", "yes", "--appendfsync", "always"))
    server.start()
    stop = asyncio.Event()
    models = [ViewerModel() for _ in range(3)]
    try:
        with running_stack(server.url, events_file, prefix) as stack:
            tasks = [asyncio.create_task(follow(stack.ws_url, m, stop)) for m in models]
            append_json(events_file, agent_lines("s1", "a1", done=False) + agent_lines("s1", "a2", done=True))
            for m in models:
                await _converge(m, server, prefix)
            server.stop()
            for i in range(10):
                append_json(events_file, agent_lines("s1", f"b{i}", done=i % 2 == 0))
                await asyncio.sleep(1.0)  # the outage lasts 10 s while the hook keeps writing
            server.start()
            # 6 events before the outage, then 5 agents with 3 events and 5 with 2.
            await asyncio.to_thread(wait_for, lambda: seq(server, prefix) >= 31, 30, 0.05, "catch-up")
            for m in models:
                await _converge(m, server, prefix)
            stop.set()
            await asyncio.gather(*tasks)
    finally:
        server.close()
    for m in models:
        assert m.holes == [] and m.duplicates == 0
        assert {k.split("/")[1] for k in m.keys} == {"main", "a1", "b1", "b3", "b5", "b7", "b9"}


@reliability(
    "Faults",
    "Redis flushed or restarted empty",
    injected="FLUSHALL under running ingest, relay and viewers",
    checked="a new epoch; every viewer gets a reset snapshot and converges; no seq confusion",
)
async def test_flushall_resets_every_viewer(own_redis: RedisServer, prefix: str, events_file: Path) -> None:
    stop = asyncio.Event()
    models = [ViewerModel() for _ in range(3)]
    with running_stack(own_redis.url, events_file, prefix) as stack:
        tasks = [asyncio.create_task(follow(stack.ws_url, m, stop)) for m in models]
        append_json(events_file, agent_lines("s1", "a1", done=False))
        for m in models:
            await _converge(m, own_redis, prefix)
        epoch = models[0].epoch
        own_redis.cli("FLUSHALL")
        append_json(events_file, agent_lines("s1", "a2", done=False))
        await asyncio.to_thread(wait_for, lambda: "s1/a2" in hgetall_keys(own_redis, prefix), 15, 0.05, "a2")
        for m in models:
            await _converge(m, own_redis, prefix)
        stop.set()
        await asyncio.gather(*tasks)
    for m in models:
        assert m.epoch != epoch and m.resets >= 1 and m.holes == []
        assert {k.split("/")[1] for k in m.keys} == {"main", "a1", "a2"}  # ingest rewrote its whole alive set


@reliability(
    "Faults",
    "relay SIGSTOPped until Redis drops its subscription",
    injected="relay stopped 5 s during a burst; Redis evicts it past a 64 KiB pub/sub output buffer",
    checked="on resume the relay resubscribes and fills the gap or resets; "
    "the viewer sees no silent hole and converges",
)
async def test_relay_paused_past_the_output_buffer_resyncs(prefix: str, events_file: Path) -> None:
    server = RedisServer(extra=("--client-output-buffer-limit", "pubsub 64kb 32kb 1"))
    server.start()
    stop = asyncio.Event()
    model = ViewerModel()
    try:
        with running_stack(server.url, events_file, prefix) as stack:
            task = asyncio.create_task(follow(stack.ws_url, model, stop))
            append_json(events_file, agent_lines("s1", "a1", done=False))
            await _converge(model, server, prefix)
            os.kill(stack.relay.proc.pid, signal.SIGSTOP)
            try:
                lines(events_file, 0, 5000)
                wait_for(lambda: seq(server, prefix) >= 5003, timeout=30, what="burst committed")
                wait_for(
                    lambda: server.cli("PUBSUB", "NUMSUB", Keys(prefix).channel).split()[-1] == "0",
                    timeout=20,
                    what="Redis dropping the paused subscriber",
                )
            finally:
                os.kill(stack.relay.proc.pid, signal.SIGCONT)
            await _converge(model, server, prefix)
            stop.set()
            await task
    finally:
        server.close()
    assert model.holes == [] and model.duplicates == 0


@reliability(
    "Faults",
    "two relays, one killed",
    injected="SIGKILL of one of two relays on one Redis",
    checked="its viewers reconnect elsewhere and resume without duplicates; the other relay's viewers are untouched",
)
async def test_two_relays_one_killed(redis_server: RedisServer, prefix: str, events_file: Path) -> None:
    stop = asyncio.Event()
    with running_stack(redis_server.url, events_file, prefix) as stack:
        second, second_base = start_relay(redis_server.url, prefix)
        stack.extra_procs.append(second)
        second_url = second_base.replace("http://", "ws://") + "/stream"
        on_first = [ViewerModel() for _ in range(3)]
        on_second = [ViewerModel() for _ in range(3)]
        urls = {id(m): stack.ws_url for m in on_first} | {id(m): second_url for m in on_second}

        tasks = [asyncio.create_task(follow(urls[id(m)], m, stop)) for m in on_second]
        first_tasks = [asyncio.create_task(follow(stack.ws_url, m, stop)) for m in on_first]
        await _connected(on_first + on_second)
        lines(events_file, 0, 200)
        for m in on_first + on_second:
            await _converge(m, redis_server, prefix)
        stack.relay.kill()
        for t in first_tasks:
            t.cancel()
        # The killed relay's viewers come back on the other relay with since/epoch.
        moved = [asyncio.create_task(follow(second_url, m, stop)) for m in on_first]
        lines(events_file, 200, 200)
        for m in on_first + on_second:
            await _converge(m, redis_server, prefix)
        stop.set()
        await asyncio.gather(*tasks, *moved)
        await asyncio.gather(*first_tasks, return_exceptions=True)
    for m in on_first + on_second:
        assert m.holes == [] and m.duplicates == 0
        assert [e["tool_use_id"] for e in m.events if e["type"] == "tool_use"] == [f"tu-{i}" for i in range(400)]
    for m in on_first:
        assert m.snapshots == 1  # resumed from the log, not redrawn
    for m in on_second:
        assert m.reconnects == 0 and m.snapshots == 1


@reliability(
    "Faults",
    "relay restarted",
    injected="SIGTERM of the relay with viewers connected, started again on the same port",
    checked="viewers get 1012, reconnect with jitter and resume from since/epoch without duplicates or a redraw",
)
async def test_relay_restart_viewers_resume(redis_server: RedisServer, prefix: str, events_file: Path) -> None:
    stop = asyncio.Event()
    models = [ViewerModel() for _ in range(5)]
    with running_stack(redis_server.url, events_file, prefix) as stack:
        tasks = [asyncio.create_task(follow(stack.ws_url, m, stop)) for m in models]
        await _connected(models)
        lines(events_file, 0, 100)
        for m in models:
            await _converge(m, redis_server, prefix)
        await asyncio.to_thread(stack.restart_relay, lambda: lines(events_file, 100, 100))
        for m in models:
            await _converge(m, redis_server, prefix)
        stop.set()
        await asyncio.gather(*tasks)
    for m in models:
        assert 1012 in m.close_codes and m.reconnects >= 1
        assert m.snapshots == 1 and m.holes == [] and m.duplicates == 0
        assert [e["tool_use_id"] for e in m.events if e["type"] == "tool_use"] == [f"tu-{i}" for i in range(200)]


@reliability(
    "Faults",
    "Claude Code's own gaps",
    injected="a sub-agent with no SubagentStop, a SessionEnd that never comes, "
    "tool events for an agent_id that never started, SubagentStop fired twice",
    checked="ghost node created once, ended once; everything ends as lost after the idle timeout; "
    "the alive hash empties",
)
def test_claude_code_gaps_end_by_timeout(redis_server: RedisServer, prefix: str, events_file: Path) -> None:
    events_file.parent.mkdir(parents=True)
    base = {"session_id": "gappy", "_received_at": int(time.time() * 1000)}
    append_json(
        events_file,
        [
            *agent_lines("gappy", "never-stops", done=False),
            {**base, "hook_event_name": "PreToolUse", "agent_id": "stray", "tool_name": "Bash", "tool_use_id": "x1"},
            {**base, "hook_event_name": "SubagentStop", "agent_id": "stray"},
            {**base, "hook_event_name": "SubagentStop", "agent_id": "stray", "stop_hook_active": True},
        ],
    )
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start", "--idle-timeout", "2")
    try:
        wait_for(lambda: seq(redis_server, prefix) >= 6, what="events")
        assert hgetall_keys(redis_server, prefix) == {"gappy/main", "gappy/never-stops"}
        # never-stops has a call with no Post: busy, until the call counts as abandoned (4 idle timeouts).
        wait_for(lambda: hgetall_keys(redis_server, prefix) == set(), timeout=30, what="idle timeout")
    finally:
        ingest.stop()
    out = redis_server.cli("--raw", "XRANGE", Keys(prefix).log, "-", "+")
    data = [json.loads(line)["data"] for line in out.splitlines() if line.startswith("{")]
    assert [(d["type"], d["agent_id"]) for d in data if d["type"] == "agent_spawn"] == [
        ("agent_spawn", "never-stops"),
        ("agent_spawn", "stray"),
    ]
    assert [(d["agent_id"], d["outcome"]) for d in data if d["type"] == "agent_done"] == [
        ("stray", "unknown"),
        ("never-stops", "lost"),
    ]
    assert data[-1]["type"] == "session_end" and data[-1]["reason"] == "idle"


def test_stack_helpers_do_not_leak(redis_server: RedisServer) -> None:
    """The fixtures above stop what they start: no ingest or relay of ours outlives its test."""
    ours = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_ours(p)]
    assert ours == []


def _is_ours(proc_dir: Path) -> bool:
    try:
        cmdline = (proc_dir / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return (
        len(cmdline) > 2
        and cmdline[1:3] in ([b"-m", b"ingest"], [b"-m", b"relay"])
        and str(os.getpid()) in _ppid(proc_dir)
    )


def _ppid(proc_dir: Path) -> str:
    try:
        return (proc_dir / "stat").read_text().split()[3]
    except OSError:
        return ""
