"""Ingest catching up on a file: lines/s into Redis, against raw Redis loops on the same Redis, and idle CPU.

Every variant reads the same file into the same redis-server (fresh prefix each run), in rotating order, and
the reported figure is the median over the repetitions.
- agentwatch ingest: `python -m ingest --from start` on the whole file; timed from its start-up log line to
  the moment its stats counter says every line is committed (polled every 5 ms).
- the baseline's ingest (the previous commit's, bench/baseline.py), timed the same way.
- raw pipelined XADD: the physical limit of one Python client: one XADD per line, 2000 per round trip
  (ingest's batch size), no parsing.
- one round trip per line: the same XADDs, awaiting each reply before the next.
- the naive design (bench/naive.py): poll, parse, XADD + PUBLISH per line, one round trip each.
The last two are 20-60 times slower: they run on the file's first SLOW_LINES lines (a steady rate either way).

For the ingest runs, the redis-server's CPU and its commands (INFO commandstats, bench/redis_ops.py, the 5 ms
polls left out) are divided by the lines: what one event costs Redis, which the capacity table scales. Then one
more agentwatch run with py-spy on ingest (bench/profile.py), outside the medians.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench import baseline, profile, redis_ops, transcript_cost
from bench.baseline import Baseline
from bench.common import PYTHON, CpuMeter, Workload, cpu_seconds, log, median
from bench.harness import system
from tests.stack import Proc, RedisServer, start_ingest

BATCH = 2000
SLOW_LINES = 20_000
RAW = "raw pipelined XADD (2000 per round trip)"
PER_LINE = "one round trip per line (XADD)"
NAIVE = "naive design (bench/naive.py)"
AGENTWATCH = "agentwatch ingest"


def make_file(path: Path, lines: int, pairs: bool) -> int:
    """`lines` hook lines after the setup lines; returns the total line count. Pre-only or Pre/Post pairs."""
    workload = Workload()
    now = int(time.time() * 1000)
    chunks = [workload.setup(now)]
    caller = workload.next_caller()
    for i in range(lines):
        tool_use_id = f"toolu_{i // 2 if pairs else i:08d}"
        if not pairs or i % 2 == 0:
            caller = workload.next_caller()
            chunks.append(workload.pre(tool_use_id, now, caller))
        else:
            chunks.append(workload.post(tool_use_id, now, caller))
    data = b"".join(chunks)
    path.write_bytes(data)
    return data.count(b"\n")


def _wait_lines(server: RedisServer, prefix: str, total: int, proc: Proc, timeout: float = 600) -> tuple[float, int]:
    """When every line is committed (perf_counter), and how many polls (HGETs) it took to see it."""
    client = redis.Redis(port=server.port)
    deadline = time.monotonic() + timeout
    polls = 0
    try:
        while int(client.hget(f"{prefix}:stats", "lines") or 0) < total:
            polls += 1
            if time.monotonic() > deadline or proc.proc.poll() is not None:
                raise RuntimeError(f"ingest did not finish: {proc.output[-2000:]}")
            time.sleep(0.005)
        return time.perf_counter(), polls + 1
    finally:
        client.close()


def run_agentwatch(server: RedisServer, path: Path, total: int) -> dict[str, Any]:
    prefix = "i" + uuid.uuid4().hex[:10]
    return _catch_up(server, prefix, total, start_ingest(server.url, path, prefix, "--from", "start"))


def run_baseline(server: RedisServer, path: Path, total: int, tree: Path) -> dict[str, Any]:
    prefix = "o" + uuid.uuid4().hex[:10]
    return _catch_up(server, prefix, total, baseline.start_ingest(tree, server.url, path, prefix, "--from", "start"))


def run_naive(server: RedisServer, path: Path, total: int) -> dict[str, Any]:
    prefix = "n" + uuid.uuid4().hex[:10]
    args = ["--redis-url", server.url, "--prefix", prefix, "--events-file", str(path)]
    proc = Proc([PYTHON, "-m", "bench.naive", "ingest", *args])
    try:
        proc.wait_line("naive ingest: polling")
    except BaseException:
        proc.stop()
        raise
    return _catch_up(server, prefix, total, proc)


def _catch_up(
    server: RedisServer, prefix: str, total: int, proc: Proc, recording: Path | None = None
) -> dict[str, Any]:
    """Time and CPU of a started tailer until all `total` lines are in Redis, and what Redis did meanwhile;
    then stop it and clean up. With `recording`, py-spy samples it throughout (its figures are then not kept)."""
    assert server.proc is not None
    try:
        spy = profile.Recording(proc.proc.pid, 60, recording) if recording else None
        start = time.perf_counter()
        cpu0, redis0 = cpu_seconds(proc.proc.pid), cpu_seconds(server.proc.pid)
        ops0 = redis_ops.read(server)
        end, polls = _wait_lines(server, prefix, total, proc)
        cpu, redis_cpu = cpu_seconds(proc.proc.pid) - cpu0, cpu_seconds(server.proc.pid) - redis0
        ops1 = redis_ops.read(server)
        if spy is not None:
            spy.stop()
    finally:
        proc.stop()
    _flush_prefix(server, prefix)
    if spy is not None:
        return spy.result()
    out: dict[str, Any] = {
        "seconds": end - start,
        "lines_per_s": total / (end - start),
        "cpu_us_per_line": cpu / total * 1e6,
        "redis_cpu_us_per_line": redis_cpu / total * 1e6,
    }
    if ops0 is not None and ops1 is not None:
        calls = redis_ops.delta(ops0, ops1)
        calls["hget"] = calls.get("hget", 0) - polls  # the bench's own polls
        out["redis_ops"] = redis_ops.per_event({k: v for k, v in calls.items() if v > 0}, total)
    return out


def run_raw(server: RedisServer, path: Path, pipelined: bool) -> dict[str, float]:
    key = "r" + uuid.uuid4().hex[:10] + ":log"
    client = redis.Redis(port=server.port)
    try:
        start = time.perf_counter()
        cpu0 = time.process_time()
        lines = path.read_bytes().splitlines()
        if pipelined:
            for i in range(0, len(lines), BATCH):
                pipe = client.pipeline(transaction=False)
                for line in lines[i : i + BATCH]:
                    pipe.xadd(key, {"envelope": line}, maxlen=10_000, approximate=True)
                pipe.execute()
        else:
            for line in lines:
                client.xadd(key, {"envelope": line}, maxlen=10_000, approximate=True)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        client.delete(key)
    finally:
        client.close()
    return {"seconds": seconds, "lines_per_s": len(lines) / seconds, "cpu_us_per_line": cpu / len(lines) * 1e6}


def _flush_prefix(server: RedisServer, prefix: str) -> None:
    client = redis.Redis(port=server.port)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def throughput(server: RedisServer, work: Path, lines: int, reps: int, base: Baseline) -> dict[str, Any]:
    pre_only = work / "catchup-pre.jsonl"
    pairs = work / "catchup-pairs.jsonl"
    slow = work / "catchup-slow.jsonl"
    total = make_file(pre_only, lines, pairs=False)
    total_pairs = make_file(pairs, lines, pairs=True)
    total_slow = make_file(slow, min(lines, SLOW_LINES), pairs=False)
    variants: dict[str, Callable[[], dict[str, Any]]] = {
        AGENTWATCH: lambda: run_agentwatch(server, pre_only, total),
        "agentwatch ingest, Pre/Post pairs": lambda: run_agentwatch(server, pairs, total_pairs),
    }
    if base.tree is not None:
        tree = base.tree
        variants[f"ingest at {base.label}"] = lambda: run_baseline(server, pre_only, total, tree)
    variants[RAW] = lambda: run_raw(server, pre_only, pipelined=True)
    variants[PER_LINE] = lambda: run_raw(server, slow, pipelined=False)
    variants[NAIVE] = lambda: run_naive(server, slow, total_slow)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    names = list(variants)
    for rep in range(reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            log(f"ingest throughput rep {rep + 1}/{reps}: {name}")
            runs[name].append(variants[name]())
    sizes = [len(line) for line in pre_only.read_bytes().splitlines()[-1000:]]
    results: dict[str, dict[str, Any]] = {}
    for name, measured in runs.items():
        results[name] = {
            "lines_per_s": round(median([f["lines_per_s"] for f in measured])),
            "seconds": round(median([f["seconds"] for f in measured]), 3),
            "cpu_us_per_line": round(median([f["cpu_us_per_line"] for f in measured]), 1),
            "runs": [round(f["lines_per_s"]) for f in measured],
            "lines": total_slow if name in (PER_LINE, NAIVE) else total_pairs if "pairs" in name else total,
        }
        if "redis_cpu_us_per_line" in measured[0]:
            results[name]["redis_cpu_us_per_line"] = round(median([f["redis_cpu_us_per_line"] for f in measured]), 2)
        if "redis_ops" in measured[0]:
            # The same file each time: the commands per line hardly move; the median run's are kept.
            ranked = sorted(measured, key=lambda f: f["redis_ops"]["per_event"] or 0)
            results[name]["redis_ops"] = ranked[len(ranked) // 2]["redis_ops"]
    raw = results[RAW]["lines_per_s"]
    per_line = results[PER_LINE]["lines_per_s"]
    naive = results[NAIVE]["lines_per_s"]
    for figures in results.values():
        figures["vs_raw_pipelined"] = round(figures["lines_per_s"] / raw, 3)
        figures["vs_per_line"] = round(figures["lines_per_s"] / per_line, 2)
        figures["vs_naive"] = round(figures["lines_per_s"] / naive, 2)
    # Three times the file, so that py-spy gets past its attaching and takes a thousand samples or so.
    profiled = work / "catchup-profile.jsonl"
    total_profiled = make_file(profiled, 3 * lines, pairs=False)
    log(f"ingest throughput: one more agentwatch run, {total_profiled:,} lines, with py-spy on ingest")
    prefix = "p" + uuid.uuid4().hex[:10]
    spied = start_ingest(server.url, profiled, prefix, "--from", "start")
    found = _catch_up(server, prefix, total_profiled, spied, recording=work / "ingest-profile.txt")
    return {
        "lines": total,
        "measured_lines": lines,
        "slow_lines": total_slow,
        "reps": reps,
        "line_bytes_median": int(median([float(s) for s in sizes])),
        "results": results,
        "baseline": {"rev": base.rev, "note": base.note, "variant": f"ingest at {base.label}" if base.tree else None},
        "profile": found | {"process": "ingest", "lines": total_profiled},
    }


def idle_cpu(server: RedisServer, work: Path, seconds: float, base: Baseline) -> dict[str, Any]:
    """CPU of ingest and relay processes with nothing to do, agentwatch, the baseline and naive side by side,
    in the same window."""
    setup = Workload().setup(int(time.time() * 1000))
    with contextlib.ExitStack() as stack:
        systems = {"agentwatch": stack.enter_context(system("agentwatch", server, work, setup=setup))}
        if base.tree is not None:
            systems[base.label] = stack.enter_context(system("baseline", server, work, setup=setup, tree=base.tree))
        systems["naive"] = stack.enter_context(system("naive", server, work, setup=setup))
        time.sleep(1.0)
        pids = {}
        for name, sysm in systems.items():
            pids[f"{name} ingest"] = sysm.ingest.proc.pid
            pids[f"{name} relay"] = sysm.relays[0].proc.pid
        meter = CpuMeter(pids)
        time.sleep(seconds)
        cpu = meter.stop()
    return {"seconds": seconds, "cpu_pct": cpu, "watch_step_ms": _watch_step_ms()}


def _watch_step_ms() -> int:
    from ingest.settings import Settings

    return Settings(events_file=Path(os.devnull)).watch_step_ms


def run(server: RedisServer, work: Path, smoke: bool, base: Baseline) -> dict[str, Any]:
    lines = 2_000 if smoke else 100_000
    out = throughput(server, work, lines, 1 if smoke else 3, base)
    out["idle"] = idle_cpu(server, work, 1.0 if smoke else 10.0, base)
    out["transcripts"] = transcript_cost.run(server, work, 2.0 if smoke else 15.0)
    return out
