"""Replay on a real stack: the state at any seq, from a keyframe plus envelopes, equals what a live viewer held
at that seq; the window is cut by time and by bytes; outside it, a clear refusal with its bounds."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from redis.asyncio import Redis

from contract import Keys
from ingest.retention import Retention
from tests.mirror import Mirror, counters_of, project
from tests.stack import (
    PYTHON,
    Proc,
    RedisServer,
    Stack,
    free_port,
    play_fixture,
    running_stack,
    wait_for,
)
from tests.test_real_installs import FILES as REAL_INSTALLS
from tests.test_real_installs import payloads
from tests.viewer import next_message

reliability = pytest.mark.reliability
KEYFRAMES = ("--keyframe-every", "7")  # several keyframes in the fixture's 48 events


@pytest.fixture
def stack(redis_server: RedisServer, events_file: Path, prefix: str) -> Iterator[Stack]:
    with running_stack(redis_server.url, events_file, prefix, ingest_args=KEYFRAMES) as s:
        yield s


def _view(records: Any) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    items = records.values() if isinstance(records, dict) else records
    return {f"{r['session_id']}/{r['agent_id']}": (project(r), counters_of(r)) for r in items}


async def _live(url: str, until: int, states: dict[int, Any]) -> None:
    """A live viewer from the start: what it held after each seq."""
    async with websockets.connect(url) as ws:
        snapshot = await next_message(ws)
        mirror = Mirror(snapshot["alive"])
        states[snapshot["seq"]] = _mirror_view(mirror)
        seq = snapshot["seq"]
        while seq < until:
            message = await next_message(ws, 20)
            if message["type"] != "event":
                continue
            assert message["seq"] == seq + 1
            seq = message["seq"]
            mirror.apply(message["data"])
            states[seq] = _mirror_view(mirror)
        assert mirror.problems == []


def _mirror_view(mirror: Mirror) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return copy.deepcopy({k: (v, mirror.counters.get(k, counters_of({}))) for k, v in mirror.records.items()})


async def _replay(url: str, point: str, speed: str = "max", events: int = 0) -> tuple[dict[str, Any], list[Any]]:
    async with websockets.connect(f"{url}?replay={point}&speed={speed}", open_timeout=10, close_timeout=2) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        got = []
        while len(got) < events:
            got.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        return first, got


def _seq(server: RedisServer, prefix: str) -> int:
    return int(server.cli("HGET", Keys(prefix).meta, "seq").strip() or 0)


async def _until(predicate: Any, what: str, within: float = 30.0) -> None:
    """wait_for for a test whose own viewer runs in this event loop (a blocking wait would starve it)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


def _lines(server: RedisServer, prefix: str) -> int:
    return int(server.cli("HGET", Keys(prefix).stats, "lines").strip() or 0)


def _window(stack: Stack) -> dict[str, Any]:
    with urllib.request.urlopen(stack.base_url + "/replay/window", timeout=5) as r:
        body: dict[str, Any] = json.loads(r.read())
        return body


@reliability(
    "Replay",
    "the state at every seq",
    injected="the fixture session played live with a viewer connected, keyframes every 7 envelopes",
    checked="the replay's snapshot (keyframe + envelopes) at each of the 49 seqs equals what the live viewer held "
    "then, view fields and counters; playing on gives the same events in order, then replay_end",
)
async def test_the_state_at_every_seq_is_what_a_live_viewer_held(stack: Stack, redis_server: RedisServer) -> None:
    states: dict[int, Any] = {}
    live = asyncio.create_task(_live(stack.ws_url, 48, states))
    await asyncio.sleep(0.3)  # connected before the first line (the snapshot says so: seq 0)
    await asyncio.to_thread(play_fixture, stack.events_file)
    await asyncio.wait_for(live, 30)
    assert _seq(redis_server, stack.prefix) == 48
    window = _window(stack)
    assert window["first_seq"] == 0 and window["last_seq"] == 48
    assert int(redis_server.cli("XLEN", Keys(stack.prefix).keyframes)) >= 48 // 7
    for seq in range(0, 49):
        snapshot, _ = await _replay(stack.ws_url, str(seq))
        assert snapshot["type"] == "snapshot" and snapshot["seq"] == seq
        assert _view(snapshot["alive"]) == states[seq], f"replay at seq {seq}"
    # Played on from seq 20: the same events, in order, with their seqs; then the end of the window.
    snapshot, events = await _replay(stack.ws_url, "20", events=29)
    mirror = Mirror(snapshot["alive"])
    for message in events[:-1]:
        mirror.apply(message["data"])
    assert [m["seq"] for m in events[:-1]] == list(range(21, 49))
    assert events[-1] == {"type": "replay_end", "seq": 48}
    assert _mirror_view(mirror) == states[48]
    # The timeline: events per minute add up to the log, markers for starts, ends and failures.
    assert sum(e for _, e, _ in window["minutes"]) == 48
    kinds = {m["type"] for m in window["marks"]}
    assert {"session_start", "session_end", "tool_fail"} <= kinds


async def test_outside_the_window_is_refused_with_its_bounds(stack: Stack) -> None:
    await asyncio.to_thread(play_fixture, stack.events_file, 10)
    wait_for(lambda: _window(stack)["last_seq"] >= 10, what="10 events")
    async with websockets.connect(f"{stack.ws_url}?replay=99999") as ws:
        message = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert message["error"] == "replay_outside_window"
    assert "seqs 0 to" in message["message"] and message["window"]["first_seq"] == 0
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
    async with websockets.connect(f"{stack.ws_url}?replay=yesterday-ish") as ws:
        message = json.loads(await ws.recv())
    assert message["error"] == "bad_replay" and "expected a seq" in message["message"]


@reliability(
    "Replay",
    "retention by time and by bytes",
    injected="half a session, a pause, the other half; the window cut at now - 1 s, then under a byte ceiling "
    "of half what it holds",
    checked="each cut starts at a keyframe (the log's first entry right after it), says how it was cut, frees "
    "memory, and replays inside the window still equal the live viewer; before it, a refusal",
)
async def test_retention_cuts_by_time_and_by_bytes_at_a_keyframe(stack: Stack, redis_server: RedisServer) -> None:
    keys = Keys(stack.prefix)
    states: dict[int, Any] = {}
    live = asyncio.create_task(_live(stack.ws_url, 48, states))
    await asyncio.sleep(0.3)
    await asyncio.to_thread(play_fixture, stack.events_file, 24)
    await _until(lambda: _seq(redis_server, stack.prefix) >= 24, "the first half committed")
    await asyncio.sleep(1.2)
    first_half = _seq(redis_server, stack.prefix)  # everything the first 24 lines made (re-keys too)
    cut_after = time.time()
    await asyncio.to_thread(play_fixture, stack.events_file, None, 24)
    await asyncio.wait_for(live, 30)
    redis = Redis.from_url(redis_server.url)
    try:
        # By time: everything older than 1 s goes, up to the last keyframe written before then.
        trimmed = await Retention(redis, keys, time.time() - cut_after + 0.6, 0).run()
        assert trimmed is not None and trimmed.how == "time" and 0 < trimmed.start <= first_half < 48
        window = _window(stack)
        assert window["first_seq"] == trimmed.start and window["trimmed"] == "time"
        first_log = await redis.xrange(keys.log, "-", "+", count=1)
        assert first_log[0][0] == f"{trimmed.start + 1}-0".encode()
        for seq in (trimmed.start, trimmed.start + 1, 48):
            snapshot, _ = await _replay(stack.ws_url, str(seq))
            assert _view(snapshot["alive"]) == states[seq]
        snapshot, _ = await _replay(stack.ws_url, str(trimmed.start - 1))
        assert snapshot["error"] == "replay_outside_window"
        # By bytes: a ceiling below what is held moves the start to a later keyframe, and says so.
        retention = Retention(redis, keys, 86400, 0)
        used = await retention.used_bytes()
        by_bytes = await Retention(redis, keys, 86400, used // 2).run()
        assert by_bytes is not None and by_bytes.how == "bytes" and by_bytes.start > trimmed.start
        assert await retention.used_bytes() < used
        assert _window(stack)["trimmed"] == "bytes"
        snapshot, _ = await _replay(stack.ws_url, str(by_bytes.start))
        assert _view(snapshot["alive"]) == states[by_bytes.start]
    finally:
        await redis.aclose()


@reliability(
    "Replay",
    "a new epoch",
    injected="Redis loses meta, log and alive mid-session (a restart without persistence)",
    checked="the window starts again at the new epoch's first keyframe; no keyframe of the old epoch is left",
)
async def test_a_new_epoch_starts_the_window_again(stack: Stack, redis_server: RedisServer) -> None:
    keys = Keys(stack.prefix)
    await asyncio.to_thread(play_fixture, stack.events_file, 20)
    wait_for(lambda: _seq(redis_server, stack.prefix) >= 20, what="20 events")
    old = _window(stack)
    # Redis lost its state (a restart without persistence): ingest rewrites its view under a new epoch.
    redis_server.cli("DEL", keys.meta, keys.log, keys.alive)
    await asyncio.to_thread(play_fixture, stack.events_file, None, 20)
    wait_for(lambda: _window(stack)["epoch"] not in (None, old["epoch"]), what="a new epoch")
    wait_for(lambda: _window(stack)["first_seq"] is not None, what="a keyframe in the new epoch")
    window = _window(stack)
    snapshot, _ = await _replay(stack.ws_url, str(window["first_seq"]))
    assert snapshot["epoch"] == window["epoch"] != old["epoch"]
    stamps = await _keyframe_epochs(redis_server.url, keys)
    assert stamps == {window["epoch"]}  # no keyframe of the old epoch is left to replay from


async def _keyframe_epochs(url: str, keys: Keys) -> set[str]:
    redis = Redis.from_url(url, decode_responses=True)
    try:
        return {fields["epoch"] for _, fields in await redis.xrange(keys.keyframes)}
    finally:
        await redis.aclose()


@reliability(
    "Replay",
    "export and up --replay",
    injected="the fixture exported with agentwatch export, then played by agentwatch up --replay; a file that "
    "is not an export",
    checked="the played file's state at seqs 0, 13, 29, 48 equals the live viewer's; events in order; the bad "
    "file refused in one line, exit 1",
)
async def test_export_then_up_replay_plays_the_same_session(
    stack: Stack, redis_server: RedisServer, tmp_path: Path
) -> None:
    states: dict[int, Any] = {}
    live = asyncio.create_task(_live(stack.ws_url, 48, states))
    await asyncio.sleep(0.3)
    await asyncio.to_thread(play_fixture, stack.events_file)
    await asyncio.wait_for(live, 30)
    exported = tmp_path / "session.jsonl"
    base = [PYTHON, "-m", "agentwatch", "export", "--redis-url", redis_server.url, "--prefix", stack.prefix]
    with exported.open("w") as out:
        done = await asyncio.to_thread(
            subprocess.run, [*base, "--since", "2h"], stdout=out, stderr=subprocess.PIPE, text=True, timeout=30
        )
    assert done.returncode == 0 and "wrote 48 events" in done.stderr
    lines = exported.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "snapshot" and len(lines) == 49
    other = await asyncio.to_thread(
        subprocess.run, [*base, "--session", "nobody"], capture_output=True, text=True, timeout=30
    )
    assert other.returncode == 0 and other.stdout.count("\n") == 1  # the (empty) snapshot only

    port = free_port()
    up = Proc(
        [PYTHON, "-m", "agentwatch", "up", "--replay", str(exported), "--bind", f"127.0.0.1:{port}"],
        env={"AGENTWATCH_REDIS_URL": ""},
    )
    try:
        line = up.wait_line("agentwatch: open http://", timeout=20)
        assert "/?replay=0" in line
        url = f"ws://127.0.0.1:{port}/stream"
        for seq in (0, 13, 29, 48):
            snapshot, _ = await _replay(url, str(seq))
            assert _view(snapshot["alive"]) == states[seq], f"played file at seq {seq}"
        snapshot, events = await _replay(url, "0", speed="max", events=49)
        assert [m.get("seq") for m in events] == [*range(1, 49), 48]
        assert events[-1]["type"] == "replay_end"
    finally:
        up.stop()
    bad = tmp_path / "not-an-export.jsonl"
    bad.write_text('{"hook_event_name": "PreToolUse"}\n')
    refused = await asyncio.to_thread(
        subprocess.run,
        [PYTHON, "-m", "agentwatch", "up", "--replay", str(bad), "--bind", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "AGENTWATCH_REDIS_URL": ""},
    )
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith("agentwatch up: ")
    assert "expected a snapshot first" in refused.stderr


@reliability(
    "Replay",
    "a real install",
    injected="storia-mobile's 470 real payloads (7 sessions, Claude Code 2.1.45 to 2.1.119) with a live viewer",
    checked="the replay at 30 seqs spread over the run equals what the live viewer held at that seq",
)
@pytest.mark.timeout(240)
async def test_a_real_install_replays_as_it_was_seen(stack: Stack, redis_server: RedisServer) -> None:
    source = next(p for p in REAL_INSTALLS if p.name.startswith("asp2131__storia-mobile"))
    start = int(time.time() * 1000) - 60_000  # recent: nothing ends as idle while the test runs
    lines = [json.dumps({**p, "_received_at": start + i * 10}) for i, p in enumerate(payloads(source))]
    states: dict[int, Any] = {}
    live = asyncio.create_task(_live(stack.ws_url, 10**9, states))
    await asyncio.sleep(0.3)
    with stack.events_file.open("a") as f:
        f.write("\n".join(lines) + "\n")
    await _until(lambda: _lines(redis_server, stack.prefix) >= len(lines), "every line committed")
    last = _seq(redis_server, stack.prefix)
    await _until(lambda: max(states, default=0) >= last or live.done(), "the live viewer caught up")
    assert not live.done(), live.exception()
    live.cancel()
    assert _window(stack)["first_seq"] == 0
    for seq in sorted({*range(0, last + 1, max(1, last // 30)), last}):
        snapshot, _ = await _replay(stack.ws_url, str(seq))
        assert _view(snapshot["alive"]) == states[seq], f"replay at seq {seq} of {last}"
