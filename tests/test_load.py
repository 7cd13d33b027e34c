"""Load held: many viewers, a stalled one among them, a 100 000-line burst, 50 parallel hook writers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import websockets

from contract import Keys
from tests.stack import HOOK, PYTHON, ROOT, RedisServer, Stack, running_stack, start_ingest, wait_for
from tests.test_ingest import seq, stream_tool_ids, tool_line
from tests.test_relay import _raw_handshake
from tests.viewer import next_message

reliability = pytest.mark.reliability


def stats(stack: Stack) -> dict[str, Any]:
    with urllib.request.urlopen(stack.base_url + "/stats") as r:
        result: dict[str, Any] = json.load(r)
        return result


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def paced_lines(path: Path, total: int, rate: float) -> None:
    """Open loop: line i is written at start + i/rate, whatever the readers do."""
    start = time.monotonic()
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        with open(path, "ab") as f:
            f.write(tool_line(i))


async def viewer(url: str, last_id: str, ready: asyncio.Event, count: list[int]) -> list[tuple[int, str]]:
    got: list[tuple[int, str]] = []
    async with websockets.connect(url, max_queue=None, open_timeout=30) as ws:
        await next_message(ws, 30)
        count[0] += 1
        if count[0] == count[1]:
            ready.set()
        async with asyncio.timeout(120):
            while True:
                message = await next_message(ws, 120)
                if message["type"] != "event":
                    continue
                got.append((message["seq"], message["data"].get("tool_use_id") or ""))
                if message["data"].get("tool_use_id") == last_id:
                    return got


@reliability(
    "Load",
    "500 viewers, one stalled",
    injected="500 WebSocket viewers on one relay, 500 events at 100 events/s, plus one viewer that never reads",
    checked="every reading viewer gets every event in order; the stalled one is closed (4008, logged); relay memory flat; viewers, queues and tasks back to baseline",
)
async def test_500_viewers_and_a_stalled_one(redis_server: RedisServer, events_file: Path) -> None:
    events_file.parent.mkdir(parents=True)
    events_file.write_bytes(b"")
    with running_stack(redis_server.url, events_file) as stack:
        baseline = stats(stack)
        rss_before = rss_kib(stack.relay.proc.pid)
        total, n = 500, 500
        ready, count = asyncio.Event(), [0, n]
        readers = [asyncio.create_task(viewer(stack.ws_url, f"tu-{total - 1}", ready, count)) for _ in range(n)]
        await asyncio.wait_for(ready.wait(), 60)
        stalled = await asyncio.to_thread(_raw_handshake, stack.port)
        try:
            writer = asyncio.create_task(paced_lines(events_file, total, 100.0))
            # The stalled viewer also has to fill kernel buffers: a burst of big-enough traffic does that.
            results = await asyncio.gather(*readers)
            await writer
            extra = 40_000
            with open(events_file, "ab") as f:
                f.write(b"".join(tool_line(total + i) for i in range(extra)))
            await asyncio.to_thread(wait_for, lambda: stats(stack)["viewers"] == 0, 60, 0.1, "stalled viewer closed")
        finally:
            stalled.close()
        for got in results:
            assert [tid for _, tid in got if tid.startswith("tu-")] == [f"tu-{i}" for i in range(total)]
            seqs = [s for s, _ in got]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert "closing a viewer (4008)" in stack.relay.output
        after = stats(stack)
        assert after["viewers"] == 0 and after["queued"] == 0 and after["tasks"] == baseline["tasks"]
        # 500 viewers came and went and 20 MB passed through: what stays is allocator slack, not viewers.
        assert rss_kib(stack.relay.proc.pid) - rss_before < 64 * 1024


@reliability(
    "Load",
    "100 000-line burst",
    injected="100 000 lines appended at once",
    checked="drained completely, each once, in order, all of it in the replay window (cut by time and bytes: "
    "tests/test_replay.py); under 400 bytes of Redis memory per envelope",
)
def test_100k_line_burst(redis_server: RedisServer, prefix: str, events_file: Path) -> None:
    events_file.parent.mkdir(parents=True)
    total = 100_000
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
    try:
        with open(events_file, "ab") as f:
            f.write(b"".join(tool_line(i) for i in range(total)))
        wait_for(lambda: seq(redis_server, prefix) >= total + 1, timeout=120, interval=0.2, what="burst drained")
    finally:
        ingest.stop()
    ids = stream_tool_ids(redis_server, prefix)
    assert ids == [f"tu-{i}" for i in range(total)]  # no count cap: the window is kept by time and bytes
    usage = int(redis_server.cli("MEMORY", "USAGE", Keys(prefix).log, "SAMPLES", "0").strip())
    assert usage < total * 400


WRITER = """
import json, os, subprocess, sys
writer, count, hook, events = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
env = {**os.environ, "AGENTWATCH_EVENTS_FILE": events}
for i in range(count):
    payload = {"session_id": f"w{writer}", "hook_event_name": "PreToolUse", "tool_name": "Write",
               "tool_use_id": f"w{writer}-{i}", "tool_input": {"content": "x" * ((1 << 20) if i % 100 == 7 else 200)}}
    subprocess.run(["sh", hook], input=json.dumps(payload).encode(), env=env, check=True)
"""


@reliability(
    "Load",
    "50 parallel hook writers",
    injected="50 hook processes at once, 500 events each, every 100th a 1 MiB payload",
    checked="every line in the file is valid JSON; every event is ingested exactly once",
)
def test_50_parallel_hook_writers(redis_server: RedisServer, prefix: str, events_file: Path) -> None:
    events_file.parent.mkdir(parents=True)
    writers, each = 50, 500
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start", "--stream-cap", "40000")
    try:
        procs = [
            subprocess.Popen([PYTHON, "-c", WRITER, str(w), str(each), str(HOOK), str(events_file)], cwd=ROOT)
            for w in range(writers)
        ]
        assert all(p.wait(600) == 0 for p in procs)
        wait_for(lambda: seq(redis_server, prefix) >= writers * (each + 1), timeout=60, what="all events")
    finally:
        ingest.stop()
    lines = events_file.read_bytes().splitlines()
    assert len(lines) == writers * each
    parsed = [json.loads(line) for line in lines]
    assert sum(bool(p.get("_truncated")) for p in parsed) == writers * (each // 100)
    ids = stream_tool_ids(redis_server, prefix)
    assert sorted(ids) == sorted(f"w{w}-{i}" for w in range(writers) for i in range(each))
    assert redis_server.cli("HGET", Keys(prefix).stats, "rejected").strip() == "0"
