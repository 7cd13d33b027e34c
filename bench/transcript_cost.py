"""What following transcripts costs ingest: CPU at a steady 1 000 events/s, with and without, side by side.

Two ingest processes run at once on the same redis-server, each fed by its own appender at the same rate
(PreToolUse/PostToolUse lines of 3 sessions x 4 agents): one with `--no-transcripts`, one following the
transcript files the payloads name, which a writer thread fills meanwhile as Claude Code does: one response
per tool call, written as two lines (a placeholder, then the final one) of about 1 KB each, in each agent's
own file (the session file, and `<session>/subagents/agent-<id>.jsonl`). Same window, same machine load.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import AGENTS, PYTHON, ROOT, CpuMeter, Workload, log
from tests.stack import Proc, RedisServer, start_ingest

RATE = 1000  # hook lines per second, each ingest
TEXT = "Reading the checkout totals to see where the rounding happens. " * 12  # ~750 bytes of content


def _writer(folder: Path, sessions: tuple[str, ...], rate: float, stop: threading.Event) -> dict[str, int]:
    """Responses at `rate` lines per second, two lines each, round-robin over every agent's file."""
    files = []
    for session in sessions:
        files.append(folder / f"{session[:8]}.jsonl")
        files += [folder / session[:8] / "subagents" / f"agent-{agent}.jsonl" for agent in AGENTS]
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    handles = [path.open("a", buffering=1 << 16) for path in files]
    written = 0
    t0 = time.monotonic()
    try:
        while not stop.is_set():
            due = int((time.monotonic() - t0) * rate)
            while written < due:
                f = handles[(written // 2) % len(handles)]
                f.write(_line(written // 2, final=written % 2 == 1))
                written += 1
            for f in handles:
                f.flush()
            time.sleep(0.01)
    finally:
        for f in handles:
            f.close()
    return {"lines": written, "files": len(files)}


def _line(n: int, final: bool) -> str:
    usage = {
        "input_tokens": 4,
        "output_tokens": 180 if final else 1,
        "cache_read_input_tokens": 24_000 + n,
        "cache_creation_input_tokens": 900,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 900},
    }
    entry = {
        "parentUuid": str(uuid.uuid4()),
        "isSidechain": False,
        "type": "assistant",
        "message": {
            "id": f"msg_{n:020d}",
            "model": "claude-sonnet-4-5",
            "role": "assistant",
            "content": [{"type": "text", "text": TEXT}],
            "stop_reason": "tool_use" if final else None,
            "usage": usage,
        },
        "requestId": f"req_{n:016d}",
        "uuid": str(uuid.uuid4()),
        "timestamp": "2026-11-29T10:00:00.000Z",
    }
    return json.dumps(entry, separators=(",", ":")) + "\n"


def run(server: RedisServer, work: Path, seconds: float) -> dict[str, Any]:
    folder = work / "projects" / "acme"
    workload = Workload(3, str(folder))
    started = int(time.time() * 1000)
    ingests: dict[str, Proc] = {}
    files: dict[str, Path] = {}
    try:
        for name, extra in (("off", ("--no-transcripts",)), ("on", ())):
            files[name] = work / f"transcripts-{name}.jsonl"
            files[name].write_bytes(workload.setup(started))
            prefix = "b" + uuid.uuid4().hex[:10]
            ingests[name] = start_ingest(server.url, files[name], prefix, "--from", "start", *extra)
        stop = threading.Event()
        result: dict[str, int] = {}
        writer = threading.Thread(
            target=lambda: result.update(_writer(folder, workload.sessions, RATE, stop)), name="transcripts"
        )
        writer.start()
        t0_ns = time.time_ns() + 500_000_000
        appenders = []
        for f in files.values():
            config = {"file": str(f), "rate": RATE, "duration": seconds + 2, "t0_ns": t0_ns, "transcripts": str(folder)}
            command = [PYTHON, "-m", "bench.appender", json.dumps(config)]
            appenders.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL))
        time.sleep(1.5)  # both at a steady rate (and every file found) before the window opens
        meter = CpuMeter({name: proc.proc.pid for name, proc in ingests.items()})
        time.sleep(seconds)
        cpu = meter.stop()
        for appender in appenders:
            appender.wait(timeout=60)
        stop.set()
        writer.join()
    finally:
        for proc in ingests.values():
            proc.stop()
    overhead = cpu["on"] / cpu["off"] - 1 if cpu["off"] > 0 else float("nan")
    log(f"transcripts: ingest CPU {cpu['off']}% without, {cpu['on']}% with ({overhead:+.0%})")
    return {
        "rate": RATE,
        "seconds": seconds,
        "cpu_pct_without": cpu["off"],
        "cpu_pct_with": cpu["on"],
        "overhead": round(overhead, 3),
        "transcript_lines": result.get("lines", 0),
        "transcript_files": result.get("files", 0),
    }
