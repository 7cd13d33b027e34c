"""The relay as a real process on a real Redis, driven through the events file by a real ingest."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from contract import MAIN_AGENT, Keys
from tests.mirror import Mirror
from tests.stack import PYTHON, ROOT, RedisServer, Stack, play_fixture, running_stack, start_relay, wait_for
from tests.viewer import next_message

SESSION = "7f3c2a91-5b6e-4d0a-9c1e-2f8b4a6d3e17"
EXPLORE, TESTER, REVIEWER = "a3f9c1d27b84e065", "a71be0c94d2f5a38", "ac52d8e6f1097b4a"

reliability = pytest.mark.reliability


@pytest.fixture
def stack(redis_server: RedisServer, events_file: Path) -> Iterator[Stack]:
    with running_stack(redis_server.url, events_file) as s:
        yield s


def append_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(json.dumps(line).encode() + b"\n" for line in lines))


def tool_calls(n: int, start: int = 0, session: str = "s-burst") -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [
        {
            "session_id": session,
            "hook_event_name": "PreToolUse",
            "tool_name": "Read",
            "tool_use_id": f"tu-{i}",
            "_received_at": now,
        }
        for i in range(start, start + n)
    ]


async def recv(ws: Any, within: float = 10.0) -> dict[str, Any]:
    return await next_message(ws, within)


async def events_until(ws: Any, done: Any, within: float = 20.0) -> list[dict[str, Any]]:
    """Event envelopes until done(envelope) holds; pings are skipped."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while True:
        message = await recv(ws, max(0.1, deadline - time.monotonic()))
        if message["type"] == "ping":
            continue
        out.append(message)
        if done(message):
            return out


async def test_fixture_session_end_to_end(stack: Stack) -> None:
    """Hook -> file -> ingest -> Redis -> relay -> WebSocket: attribution, sub-agents, the failure, empty at the end."""
    async with websockets.connect(stack.ws_url) as ws:
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot" and snapshot["alive"] == []
        play_fixture(stack.events_file)
        messages = await events_until(ws, lambda m: m["data"]["type"] == "session_end")
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(snapshot["seq"] + 1, snapshot["seq"] + 1 + len(messages)))
    data = [m["data"] for m in messages]
    mirror = Mirror().apply_all(data)
    assert mirror.problems == [] and mirror.records == {}
    spawns = {mirror.final_id(d["session_id"], d["agent_id"]): d for d in data if d["type"] == "agent_spawn"}
    assert {a: (d["agent_type"], d["parent_id"]) for a, d in spawns.items()} == {
        EXPLORE: ("Explore", MAIN_AGENT),
        TESTER: ("general-purpose", MAIN_AGENT),
        REVIEWER: ("security-reviewer", MAIN_AGENT),
    }
    calls = [(d["agent_id"], d["tool"]) for d in data if d["type"] == "tool_use"]
    assert calls == [
        (MAIN_AGENT, "Glob"),
        (MAIN_AGENT, "Read"),
        (MAIN_AGENT, "Agent"),
        (MAIN_AGENT, "Agent"),
        (MAIN_AGENT, "Agent"),
        (EXPLORE, "Grep"),
        (TESTER, "Bash"),
        (EXPLORE, "Read"),
        (REVIEWER, "Grep"),
        (EXPLORE, "Read"),
        (REVIEWER, "Read"),
        (REVIEWER, "WebFetch"),
        (TESTER, "Read"),
        (TESTER, "Bash"),
        (MAIN_AGENT, "Write"),
    ]
    assert [(d["agent_id"], d["tool"]) for d in data if d["type"] == "tool_fail"] == [(TESTER, "Bash")]
    assert {d["agent_id"] for d in data if d["type"] == "agent_done"} == {EXPLORE, TESTER, REVIEWER}
    # A page opened now sees nothing alive.
    async with websockets.connect(stack.ws_url) as ws:
        assert (await recv(ws))["alive"] == []


async def test_snapshot_mid_session_then_live(stack: Stack) -> None:
    play_fixture(stack.events_file, upto=20)
    wait_for(lambda: _seq(stack) >= 19, what="first half")
    async with websockets.connect(stack.ws_url) as ws:
        snapshot = await recv(ws)
        ids = {r["agent_id"] for r in snapshot["alive"]}
        assert ids == {MAIN_AGENT, EXPLORE, TESTER, REVIEWER}
        play_fixture(stack.events_file, start=20)
        messages = await events_until(ws, lambda m: m["data"]["type"] == "session_end")
        assert messages[0]["seq"] == snapshot["seq"] + 1


def _seq(stack: Stack) -> int:
    with urllib.request.urlopen(stack.base_url + "/stats") as r:
        return int(json.load(r)["seq"])


@reliability(
    "Load",
    "snapshot/stream boundary race",
    injected="20 viewers joining at random during a 2000 lines/s burst",
    checked="each sees seq contiguous from its snapshot S+1, no gap, no duplicate",
)
async def test_viewers_joining_during_a_burst_see_contiguous_seqs(stack: Stack) -> None:
    total = 3000

    async def viewer(delay: float) -> tuple[int, list[int]]:
        await asyncio.sleep(delay)
        async with websockets.connect(stack.ws_url, max_queue=None) as ws:
            snapshot = await recv(ws)
            if snapshot["seq"] > total:  # joined after the burst (a slow machine): nothing left to check
                return snapshot["seq"], []
            messages = await events_until(ws, lambda m: m["data"].get("tool_use_id") == f"tu-{total - 1}", within=60)
            return snapshot["seq"], [m["seq"] for m in messages]

    async def writer() -> None:
        for start in range(0, total, 100):
            append_lines(stack.events_file, tool_calls(100, start))
            await asyncio.sleep(0.05)  # 2000 lines/s for 1.5 s; viewers join in the first 0.5 s

    rng = random.Random(7)
    results = await asyncio.gather(writer(), *(viewer(rng.uniform(0, 0.5)) for _ in range(20)))
    joined_mid_burst = 0
    for snap_seq, seqs in results[1:]:  # type: ignore[misc]
        assert seqs == list(range(snap_seq + 1, snap_seq + 1 + len(seqs)))
        joined_mid_burst += 0 < snap_seq <= total
    assert joined_mid_burst >= 5, "too few viewers joined during the burst to test the boundary"


async def test_resume_with_since_and_epoch_replays_without_duplicates(stack: Stack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        snapshot = await recv(ws)
        append_lines(stack.events_file, tool_calls(10))
        first = await events_until(ws, lambda m: m["data"].get("tool_use_id") == "tu-9")
    last = first[4]["seq"]  # pretend the page applied only half of them before it lost the connection
    append_lines(stack.events_file, tool_calls(10, 10))
    wait_for(lambda: _seq(stack) >= first[-1]["seq"] + 10, what="second batch")
    async with websockets.connect(f"{stack.ws_url}?since={last}&epoch={snapshot['epoch']}") as ws:
        replay = await events_until(ws, lambda m: m["data"].get("tool_use_id") == "tu-19")
    assert replay[0]["type"] == "event"
    assert [m["seq"] for m in replay] == list(range(last + 1, last + 1 + len(replay)))
    # An epoch the relay does not know: a reset snapshot, not a guess.
    async with websockets.connect(f"{stack.ws_url}?since={last}&epoch=deadbeef") as ws:
        message = await recv(ws)
        assert message["type"] == "snapshot" and message["reset"] is True


def _raw_handshake(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window fills fast
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert b"101" in sock.recv(200)
    return sock


@reliability(
    "Load",
    "stalled viewer",
    injected="a viewer that completes the handshake and never reads, 30 000 events",
    checked="it is dropped; the reading viewer gets every event in order; no queue left",
)
async def test_a_stalled_viewer_is_dropped_and_the_others_keep_everything(stack: Stack) -> None:
    stalled = _raw_handshake(stack.port)  # completes the handshake, then never reads again
    try:
        wait_for(lambda: _stats(stack)["viewers"] == 1, what="stalled viewer registered")
        async with websockets.connect(stack.ws_url, max_queue=None) as ws:
            snapshot = await recv(ws)
            # More than the queue (2048) plus what the kernel buffers on both sides can hold (a few MB).
            for start in range(0, 30000, 1000):
                append_lines(stack.events_file, tool_calls(1000, start))
                await asyncio.sleep(0.02)
            messages = await events_until(ws, lambda m: m["data"].get("tool_use_id") == "tu-29999", within=90)
            assert [m["seq"] for m in messages] == list(range(snapshot["seq"] + 1, snapshot["seq"] + 1 + len(messages)))
            wait_for(lambda: _stats(stack)["viewers"] == 1, timeout=15, what="stalled viewer dropped")
    finally:
        stalled.close()
    wait_for(lambda: _stats(stack)["viewers"] == 0, what="no viewer left")
    assert _stats(stack)["queued"] == 0


def _stats(stack: Stack) -> dict[str, Any]:
    with urllib.request.urlopen(stack.base_url + "/stats") as r:
        stats: dict[str, Any] = json.load(r)
        return stats


@reliability(
    "Load",
    "viewer falling behind",
    injected="a burst of 1000 events into a 16-event queue",
    checked='closed with 4008 and the reason "fell behind"',
)
async def test_a_viewer_that_falls_behind_is_told_why_with_4008(redis_server: RedisServer, events_file: Path) -> None:
    """A queue of 16 and a burst of 1000: the viewer cannot keep up, gets close code 4008 and its reason."""
    with running_stack(redis_server.url, events_file, relay_args=("--queue-size", "16")) as stack:
        async with websockets.connect(stack.ws_url) as ws:
            await recv(ws)
            append_lines(stack.events_file, tool_calls(1000))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
            assert "fell behind" in closed.value.rcvd.reason
        wait_for(lambda: _stats(stack)["viewers"] == 0, what="viewer gone")


@reliability(
    "Security",
    "cross-site WebSocket hijacking",
    injected="a handshake with Origin https://evil.example",
    checked="HTTP 403 before accept, no snapshot; same origin accepted",
)
async def test_foreign_origin_is_refused_before_any_snapshot(stack: Stack) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(stack.ws_url, origin="https://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    async with websockets.connect(stack.ws_url, origin=stack.base_url) as ws:  # type: ignore[arg-type]
        assert (await recv(ws))["type"] == "snapshot"


@reliability(
    "Bad input",
    "foreign messages on the channel",
    injected="non-JSON, a wrong epoch and a future seq PUBLISHed by redis-cli",
    checked="counted and dropped; no reset; real events contiguous",
)
async def test_garbage_on_the_channel_is_dropped_without_a_reset(stack: Stack, redis_server: RedisServer) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        snapshot = await recv(ws)
        channel = Keys(stack.prefix).channel
        for garbage in (
            "not json",
            '{"type":"event","seq":999999,"epoch":"x","data":{}}',
            json.dumps({"type": "event", "seq": snapshot["seq"] + 50, "epoch": snapshot["epoch"], "data": {}}),
        ):
            redis_server.cli("PUBLISH", channel, garbage)
        append_lines(stack.events_file, tool_calls(3))
        messages = await events_until(ws, lambda m: m["data"].get("tool_use_id") == "tu-2")
        assert all(m["type"] == "event" for m in messages)
        assert [m["seq"] for m in messages] == list(
            range(snapshot["seq"] + 1, snapshot["seq"] + 5)
        )  # session + 3 calls
    stats = _stats(stack)
    assert stats["bad_messages"] >= 3 and stats["resets"] == 0


@reliability(
    "Faults",
    "CLIENT KILL TYPE pubsub",
    injected="the relay's subscription killed by Redis",
    checked="noticed, resubscribed, the gap filled from the log: the viewer misses nothing",
)
async def test_client_kill_of_the_subscription_is_noticed_and_the_gap_filled(
    stack: Stack, redis_server: RedisServer
) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        snapshot = await recv(ws)
        reconnects = _stats(stack)["reconnects"]
        redis_server.cli("CLIENT", "KILL", "TYPE", "pubsub")
        append_lines(stack.events_file, tool_calls(50))
        messages = await events_until(ws, lambda m: m["data"].get("tool_use_id") == "tu-49")
        assert [m["seq"] for m in messages] == list(range(snapshot["seq"] + 1, snapshot["seq"] + 52))  # session + 50
    wait_for(lambda: _stats(stack)["reconnects"] > reconnects, what="resubscribed")


@reliability("Bad input", "1 MiB frame from a viewer", injected="a 1 MiB text frame", checked="closed with 1009")
async def test_oversized_frame_from_a_viewer_is_closed_1009(stack: Stack) -> None:
    async with websockets.connect(stack.ws_url, max_size=None) as ws:
        await recv(ws)
        await ws.send("x" * (1 << 20))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


@reliability(
    "Bad input",
    "flooding viewer",
    injected="200 frames from a viewer in a fraction of a second",
    checked="closed with 1008; another viewer still gets events",
)
async def test_flooding_viewer_is_closed_1008_and_others_unaffected(stack: Stack) -> None:
    async with websockets.connect(stack.ws_url) as calm, websockets.connect(stack.ws_url) as flood:
        await recv(calm)
        await recv(flood)
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(200):
                await flood.send("hello")
                await asyncio.sleep(0.001)
            while True:
                await asyncio.wait_for(flood.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        append_lines(stack.events_file, tool_calls(1))
        assert (await events_until(calm, lambda m: m["data"]["type"] == "tool_use"))[-1]["data"][
            "tool_use_id"
        ] == "tu-0"


def test_health_and_ready(stack: Stack) -> None:
    with urllib.request.urlopen(stack.base_url + "/health") as r:
        assert r.status == 200 and r.read() == b"agentwatch alive"
    with urllib.request.urlopen(stack.base_url + "/ready") as r:
        assert r.status == 200
    with urllib.request.urlopen(stack.base_url + "/") as r:
        assert r.status == 200 and b"<html" in r.read().lower()


@reliability(
    "Faults",
    "readiness with Redis down",
    injected="redis-server stopped under a relay",
    checked="/ready answers 503, then 200 once Redis is back",
)
def test_ready_is_503_while_redis_is_down(own_redis: RedisServer, prefix: str) -> None:
    relay, base = start_relay(own_redis.url, prefix)
    try:
        own_redis.stop()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/ready", timeout=5)
        assert err.value.code == 503
        err.value.close()
        own_redis.start()
        wait_for(lambda: _status(base + "/ready") == 200, timeout=15, what="ready again")
    finally:
        assert relay.stop() == 0


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        err.close()
        return err.code
    except OSError:
        return 0


@reliability(
    "Security",
    "public bind without a token",
    injected="--bind 0.0.0.0 with no AGENTWATCH_TOKEN and no --insecure",
    checked="refuses to start: one line, exit 2",
)
def test_public_bind_needs_a_token_or_insecure() -> None:
    result = subprocess.run(
        [PYTHON, "-m", "relay", "--bind", "0.0.0.0:8209"], capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    assert result.returncode == 2
    assert "AGENTWATCH_TOKEN" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@reliability(
    "Security",
    "token",
    injected="a wrong token, the right one as query and as bearer header",
    checked="403 for the wrong one; both right forms accepted",
)
async def test_token_is_required_when_set(redis_server: RedisServer, prefix: str) -> None:
    relay, base = start_relay(redis_server.url, prefix, None, env={"AGENTWATCH_TOKEN": "s3cret-token"})
    ws_url = base.replace("http", "ws") + "/stream"
    try:
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(ws_url + "?token=wrong"):
                pass
        assert refused.value.response.status_code == 403
        async with websockets.connect(ws_url + "?token=s3cret-token") as ws:
            assert (await recv(ws))["type"] == "snapshot"
        async with websockets.connect(ws_url, additional_headers={"Authorization": "Bearer s3cret-token"}) as ws:
            assert (await recv(ws))["type"] == "snapshot"
    finally:
        relay.stop()


@reliability(
    "Bad input",
    "configuration: port in use",
    injected="--bind to a port another socket holds",
    checked="one line, exit 2",
)
def test_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [PYTHON, "-m", "relay", "--bind", f"127.0.0.1:{port}"], capture_output=True, text=True, cwd=ROOT, timeout=30
        )
    assert result.returncode == 2 and "already in use" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_a_burst_comes_in_batched_frames_and_a_lone_event_alone(stack: Stack, redis_server: RedisServer) -> None:
    """A busy viewer gets several events per frame (a JSON array, in seq order, nothing lost or doubled); a
    quiet stream's event still comes at once, as a frame of its own; the channel carries whole commits."""
    async with (
        websockets.connect(stack.ws_url, max_queue=None) as ws,
        websockets.connect(stack.ws_url, max_queue=None) as lone,
    ):
        snapshot = json.loads(await asyncio.wait_for(ws.recv(), 10))
        await asyncio.wait_for(lone.recv(), 10)
        published = _publishes(redis_server)
        await asyncio.to_thread(append_lines, stack.events_file, tool_calls(3000))
        frames: list[Any] = []
        events: list[dict[str, Any]] = []
        async with asyncio.timeout(60):
            while not events or events[-1]["data"].get("tool_use_id") != "tu-2999":
                frame = json.loads(await ws.recv())
                frames.append(frame)
                events += [m for m in (frame if isinstance(frame, list) else [frame]) if m["type"] == "event"]
        seqs = [m["seq"] for m in events]
        assert seqs == list(range(snapshot["seq"] + 1, seqs[-1] + 1)) and len(seqs) >= 3000
        batches = [f for f in frames if isinstance(f, list)]
        assert batches and len(frames) < len(seqs) and all(1 < len(b) <= 512 for b in batches)
        # Channel messages were whole commits, not one per event.
        assert _publishes(redis_server) - published < len(seqs) // 2
        while (await next_message(lone, 20)).get("seq") != seqs[-1]:
            pass  # the second viewer catches up
        # Quiet now: one more event comes alone, as an object, to both viewers.
        await asyncio.to_thread(append_lines, stack.events_file, tool_calls(1, start=5000))
        for viewer in (ws, lone):
            frame = json.loads(await asyncio.wait_for(viewer.recv(), 10))
            assert isinstance(frame, dict) and frame["seq"] == seqs[-1] + 1
    assert _stats(stack)["bad_messages"] == 0


def _publishes(server: RedisServer) -> int:
    stats = server.cli("INFO", "commandstats")
    return int(stats.split("cmdstat_publish:calls=", 1)[1].split(",", 1)[0]) if "cmdstat_publish:" in stats else 0
