"""Ingest catching up on a file: lines/s into Redis, against raw Redis loops on the same Redis, and idle CPU.

Every variant reads the same file into the same redis-server (fresh prefix each run), in rotating order, and
the reported figure is the median over the repetitions.
- agentwatch ingest: `python -m ingest --from start` on the whole file; timed from its start-up log line to
  the moment its stats counter says every line is committed (polled every 5 ms).
- raw pipelined XADD: the physical limit of one Python client: one XADD per line, 2000 per round trip
  (ingest's batch size), no parsing.
- one round trip per line: the same XADDs, awaiting each reply before the next.
- the naive design (bench/naive.py): poll, parse, XADD + PUBLISH per line, one round trip each.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from bench import transcript_cost
from bench.common import PYTHON, CpuMeter, Workload, cpu_seconds, log, median
from bench.harness import system
from tests.stack import Proc, RedisServer, start_ingest

BATCH = 2000


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


def _wait_lines(server: RedisServer, prefix: str, total: int, proc: Proc, timeout: float = 600) -> float:
    client = redis.Redis(port=server.port)
    deadline = time.monotonic() + timeout
    try:
        while int(client.hget(f"{prefix}:stats", "lines") or 0) < total:
            if time.monotonic() > deadline or proc.proc.poll() is not None:
                raise RuntimeError(f"ingest did not finish: {proc.output[-2000:]}")
            time.sleep(0.005)
        return time.perf_counter()
    finally:
        client.close()


def run_agentwatch(server: RedisServer, path: Path, total: int) -> dict[str, float]:
    prefix = "i" + uuid.uuid4().hex[:10]
    return _catch_up(server, prefix, total, start_ingest(server.url, path, prefix, "--from", "start"))


def run_naive(server: RedisServer, path: Path, total: int) -> dict[str, float]:
    prefix = "n" + uuid.uuid4().hex[:10]
    args = ["--redis-url", server.url, "--prefix", prefix, "--events-file", str(path)]
    proc = Proc([PYTHON, "-m", "bench.naive", "ingest", *args])
    try:
        proc.wait_line("naive ingest: polling")
    except BaseException:
        proc.stop()
        raise
    return _catch_up(server, prefix, total, proc)


def _catch_up(server: RedisServer, prefix: str, total: int, proc: Proc) -> dict[str, float]:
    """Time and CPU of a started tailer until all `total` lines are in Redis; then stop it and clean up."""
    try:
        start = time.perf_counter()
        cpu0 = cpu_seconds(proc.proc.pid)
        end = _wait_lines(server, prefix, total, proc)
        cpu = cpu_seconds(proc.proc.pid) - cpu0
    finally:
        proc.stop()
    _flush_prefix(server, prefix)
    return {"seconds": end - start, "lines_per_s": total / (end - start), "cpu_us_per_line": cpu / total * 1e6}


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


def throughput(server: RedisServer, work: Path, lines: int, reps: int) -> dict[str, Any]:
    pre_only = work / "catchup-pre.jsonl"
    pairs = work / "catchup-pairs.jsonl"
    total = make_file(pre_only, lines, pairs=False)
    total_pairs = make_file(pairs, lines, pairs=True)
    variants = {
        "agentwatch ingest": lambda: run_agentwatch(server, pre_only, total),
        "agentwatch ingest, Pre/Post pairs": lambda: run_agentwatch(server, pairs, total_pairs),
        "raw pipelined XADD (2000 per round trip)": lambda: run_raw(server, pre_only, pipelined=True),
        "one round trip per line (XADD)": lambda: run_raw(server, pre_only, pipelined=False),
        "naive design (bench/naive.py)": lambda: run_naive(server, pre_only, total),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
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
        }
    raw = results["raw pipelined XADD (2000 per round trip)"]["lines_per_s"]
    per_line = results["one round trip per line (XADD)"]["lines_per_s"]
    naive = results["naive design (bench/naive.py)"]["lines_per_s"]
    for figures in results.values():
        figures["vs_raw_pipelined"] = round(figures["lines_per_s"] / raw, 3)
        figures["vs_per_line"] = round(figures["lines_per_s"] / per_line, 2)
        figures["vs_naive"] = round(figures["lines_per_s"] / naive, 2)
    return {
        "lines": total,
        "measured_lines": lines,
        "reps": reps,
        "line_bytes_median": int(median([float(s) for s in sizes])),
        "results": results,
    }


def idle_cpu(server: RedisServer, work: Path, seconds: float) -> dict[str, Any]:
    """CPU of ingest and relay processes with nothing to do, agentwatch and naive side by side, same window."""
    setup = Workload().setup(int(time.time() * 1000))
    with contextlib.ExitStack() as stack:
        aw = stack.enter_context(system("agentwatch", server, work, setup=setup))
        nv = stack.enter_context(system("naive", server, work, setup=setup))
        time.sleep(1.0)
        pids = {
            "agentwatch ingest": aw.ingest.proc.pid,
            "agentwatch relay": aw.relays[0].proc.pid,
            "naive ingest": nv.ingest.proc.pid,
            "naive relay": nv.relays[0].proc.pid,
        }
        meter = CpuMeter(pids)
        time.sleep(seconds)
        cpu = meter.stop()
    return {"seconds": seconds, "cpu_pct": cpu, "watch_step_ms": _watch_step_ms()}


def _watch_step_ms() -> int:
    from ingest.settings import Settings

    return Settings(events_file=Path(os.devnull)).watch_step_ms


def run(server: RedisServer, work: Path, smoke: bool) -> dict[str, Any]:
    lines = 2_000 if smoke else 100_000
    out = throughput(server, work, lines, reps=1 if smoke else 3)
    out["idle"] = idle_cpu(server, work, 1.0 if smoke else 10.0)
    out["transcripts"] = transcript_cost.run(server, work, 2.0 if smoke else 15.0)
    return out
