"""Replay: what the retained window costs in Redis memory, how long the state at a point takes to build, and
what one replay viewer costs the relay and Redis.

1. Bytes per envelope and per keyframe, measured: the real ingest commits the bench workload (PreToolUse /
   PostToolUse of 3 sessions x 4 agents) with its default keyframe policy; MEMORY USAGE of the log and the
   keyframes stream divided by their lengths. Memory per hour at 10 and 100 events/s follows from them
   (keyframes: one a minute, or one per 2 000 envelopes when that is more often).
2. A 24 h log at 10 events/s (864 000 envelopes, smaller in smoke mode) written with pipelined XADD from the
   envelopes ingest wrote, with a keyframe every 2 000 holding 200 agents; its MEMORY USAGE; then the state
   at random seqs built the way the relay builds it (relay/replay.py: keyframe + envelopes), timed.
3. One replay viewer at `speed=max` through a real relay on that log: envelopes/s, and the CPU the relay and
   redis-server used meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import websockets
from redis import Redis

from bench.common import CpuMeter, Workload, log, percentile
from contract import LOG_FIELD, META_EPOCH, META_SEQ, Keys, compact_json
from relay.replay import Window
from tests.stack import RedisServer, start_ingest, start_relay, wait_for

FULL = {"lines": 20_000, "day_envelopes": 864_000, "points": 60, "replay_envelopes": 50_000}
SMOKE = {"lines": 2_000, "day_envelopes": 20_000, "points": 5, "replay_envelopes": 2_000}
KEYFRAME_EVERY = 2000
AGENTS_IN_KEYFRAME = 200


def _measure_ingested(server: RedisServer, work: Path, lines: int) -> dict[str, Any]:
    workload = Workload()
    now = int(time.time() * 1000)
    body = workload.setup(now)
    callers = []
    for i in range(lines // 2):
        caller = workload.next_caller()
        callers.append(caller)
        body += workload.pre(f"toolu_m{i:08d}", now + i, caller) + workload.post(f"toolu_m{i:08d}", now + i, caller)
    path = work / "replay-workload.jsonl"
    path.write_bytes(body)
    prefix = "b" + uuid.uuid4().hex[:10]
    keys = Keys(prefix)
    ingest = start_ingest(server.url, path, prefix, "--from", "start")
    client = Redis.from_url(server.url)
    try:
        total = body.count(b"\n")
        wait_for(lambda: int(client.hget(keys.stats, "lines") or 0) >= total, timeout=300, what="ingested")
    finally:
        ingest.stop()
    try:
        log_len, kf_len = int(client.xlen(keys.log)), int(client.xlen(keys.keyframes))
        log_bytes = int(client.memory_usage(keys.log, samples=0) or 0)
        kf_bytes = int(client.memory_usage(keys.keyframes, samples=0) or 0)
        # redis-py types stream replies loosely (None for a missing stream): they are lists of (id, fields) here.
        newest: Any = client.xrevrange(keys.keyframes, "+", "-", count=1)
        alive = json.loads(newest[0][1][b"alive"])
        entries: Any = client.xrange(keys.log, count=4000)
        envelopes = [fields[LOG_FIELD.encode()] for _, fields in entries]
    finally:
        client.close()
    per_record = len(compact_json(alive)) / max(1, len(alive))
    return {
        "prefix": prefix,
        "envelopes": log_len,
        "keyframes": kf_len,
        "bytes_per_envelope": round(log_bytes / max(1, log_len), 1),
        "bytes_per_keyframe": round(kf_bytes / max(1, kf_len)),
        "agents_per_keyframe": len(alive),
        "json_bytes_per_record": round(per_record),
        "sample_envelopes": envelopes,
        "sample_alive": alive,
    }


def _per_hour(measured: dict[str, Any], rate: int, agents: int) -> dict[str, Any]:
    envelopes = rate * 3600
    keyframes = max(60, envelopes // KEYFRAME_EVERY)
    # A keyframe's bytes grow with the alive agents: measured per record, scaled to `agents`.
    per_keyframe = measured["bytes_per_keyframe"] * agents / max(1, measured["agents_per_keyframe"])
    total = envelopes * measured["bytes_per_envelope"] + keyframes * per_keyframe
    return {"rate": rate, "agents": agents, "keyframes": keyframes, "mib_per_hour": round(total / (1 << 20), 1)}


def _write_day(server: RedisServer, measured: dict[str, Any], count: int) -> tuple[Keys, dict[str, Any]]:
    """A long log: the measured envelopes repeated with new seqs, a 200-agent keyframe every 2 000."""
    keys = Keys("b" + uuid.uuid4().hex[:10])
    epoch = uuid.uuid4().hex[:16]
    samples = [json.loads(e) for e in measured["sample_envelopes"]]
    base = measured["sample_alive"]
    template = next(iter(base.values()))
    alive = {}
    for i in range(AGENTS_IN_KEYFRAME):
        record = json.loads(template) if isinstance(template, str) else dict(template)
        record["agent_id"] = f"agent{i:04d}"
        alive[f"{record['session_id']}/agent{i:04d}"] = record
    alive_json = compact_json(alive)
    client = Redis.from_url(server.url)
    t0 = time.monotonic()
    try:
        start_ms = int(time.time() * 1000) - 86_400_000
        pipe = client.pipeline(transaction=False)
        for seq in range(0, count + 1):
            if seq % KEYFRAME_EVERY == 0:
                ts = start_ms + seq * 100
                pipe.xadd(keys.keyframes, {"ts": ts, "epoch": epoch, "alive": alive_json}, id=f"{seq}-1")
                pipe.zadd(keys.keyframe_times, {str(seq): ts})
            if seq:
                data = dict(samples[seq % len(samples)]["data"])
                data["ts"] = start_ms + seq * 100  # 10 events/s over the day
                pipe.xadd(
                    keys.log,
                    {LOG_FIELD: compact_json({"type": "event", "seq": seq, "epoch": epoch, "data": data})},
                    id=f"{seq}-0",
                )
            if seq % 5000 == 0:
                pipe.execute()
        pipe.hset(keys.meta, mapping={META_SEQ: count, META_EPOCH: epoch})
        pipe.execute()
        memory = int(client.memory_usage(keys.log, samples=0) or 0) + int(
            client.memory_usage(keys.keyframes, samples=0) or 0
        )
    finally:
        client.close()
    return keys, {"envelopes": count, "write_s": round(time.monotonic() - t0, 1), "mib": round(memory / (1 << 20), 1)}


async def _build_times(server: RedisServer, keys: Keys, count: int, points: int) -> dict[str, Any]:
    from redis.asyncio import Redis as AsyncRedis

    client = AsyncRedis.from_url(server.url)
    window = Window(client, keys)
    rng = random.Random(7)
    # The worst points (just before a keyframe: 1 999 envelopes to apply) and random ones.
    seqs = [k * KEYFRAME_EVERY - 1 for k in range(1, count // KEYFRAME_EVERY + 1)]
    chosen = rng.sample(seqs, min(points // 2, len(seqs))) + [rng.randint(1, count) for _ in range(points // 2)]
    times = []
    try:
        for seq in chosen:
            t0 = time.perf_counter()
            state, _ = await window.state_at(seq)
            times.append((time.perf_counter() - t0) * 1000)
            assert len(state.records) >= AGENTS_IN_KEYFRAME
    finally:
        await client.aclose()
    return {
        "points": len(times),
        "median_ms": round(statistics.median(times), 1),
        "p99_ms": round(percentile(times, 99), 1),
        "max_ms": round(max(times), 1),
    }


async def _one_replay(url: str, envelopes: int) -> tuple[int, float]:
    async with websockets.connect(f"{url}?replay=0&speed=max", max_size=None) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "snapshot", first
        t0 = time.perf_counter()
        got = 0
        while got < envelopes:
            message = await ws.recv()
            if '"replay_end"' in message[:40]:
                break
            got += 1
        return got, time.perf_counter() - t0


def run(server: RedisServer, work: Path, smoke: bool) -> dict[str, Any]:
    plan = SMOKE if smoke else FULL
    measured = _measure_ingested(server, work, plan["lines"])
    log(f"replay: {measured['bytes_per_envelope']} bytes per envelope, {measured['bytes_per_keyframe']} per keyframe")
    hours = [_per_hour(measured, rate, agents) for rate in (10, 100) for agents in (12, 200)]
    keys, day = _write_day(server, measured, plan["day_envelopes"])
    log(f"replay: wrote a {day['envelopes']}-envelope log in {day['write_s']} s: {day['mib']} MiB")
    build = asyncio.run(_build_times(server, keys, plan["day_envelopes"], plan["points"]))
    relay, base = start_relay(server.url, keys.prefix)
    try:
        assert server.proc is not None
        meter = CpuMeter({"relay": relay.proc.pid, "redis-server": server.proc.pid})
        got, seconds = asyncio.run(_one_replay(base.replace("http", "ws") + "/stream", plan["replay_envelopes"]))
        cpu = meter.stop()
    finally:
        relay.stop()
    one = {"envelopes": got, "per_s": round(got / seconds), "cpu_pct": cpu}
    log(f"replay: state at a point median {build['median_ms']} ms; one replay {one['per_s']} envelopes/s")
    measured = {k: v for k, v in measured.items() if not k.startswith("sample")}
    return {"plan": plan, "measured": measured, "per_hour": hours, "day": day, "build": build, "one_replay": one}
