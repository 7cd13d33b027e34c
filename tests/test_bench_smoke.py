"""`python -m bench --smoke` runs every benchmark on tiny sizes and writes a report with every section's table.

The figures are not judged (benchmarks never fail on timing); this keeps the benchmarks working.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import SECTIONS

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(240)


def test_bench_smoke_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = out.read_text()
    assert "smoke mode" in report
    for title in ("Machine and versions", *SECTIONS.values()):
        heading = f"## {title}\n"
        assert heading in report, f"no section {title!r}"
        body = report.split(heading, 1)[1].split("\n## ", 1)[0]
        assert re.search(r"^\|.*\|\n\|\s*:?-+:?\s*\|", body, re.M), f"section {title!r} has no table:\n{body[:500]}"
        assert "(could not render" not in body and "(failed" not in body and "(not run)" not in body, body[:500]
    for figure in ("nproc", "CPU", "RAM", "Python", "redis-server", "redis-py", "uvicorn", "starlette", "websockets"):
        assert f"| {figure} |" in report, figure


# ---- the bench's own parts, fast: what the figures above are computed with


def _envelope(seq: int, kind: str, pre: int, post: int, layout: str = "today") -> str:
    if layout == "today":  # as ingest writes it: type ... tool_use_id, then duration_ms on a tool_done
        data = {
            "type": kind,
            "ts": 1,
            "session_id": "s",
            "agent_id": "a",
            "tool": "Read",
            "tool_use_id": f"lat_{pre}_{post}",
        }
        if kind == "tool_done":
            data["duration_ms"] = 42
    else:  # another key order: the tally must notice and read element by element
        data = {"type": kind, "duration_ms": 42, "tool_use_id": f"lat_{pre}_{post}"}
    return json.dumps({"type": "event", "seq": seq, "epoch": "e1", "data": data}, separators=(",", ":"))


@pytest.mark.parametrize("layout", ["today", "reordered"])
def test_a_viewer_times_every_event_of_an_array_frame_each_against_its_own_due_time(layout: str) -> None:
    from bench.viewers import Tally

    tally = Tally()
    tally.frames_received(b'{"type":"snapshot","seq":0,"epoch":"e1","alive":[{"type":"Explore"}]}')
    kinds = ["tool_use", "tool_done"] * 4
    batch = "[" + ",".join(_envelope(i, k, 1000 * i, 1000 * i + 7, layout) for i, k in enumerate(kinds)) + "]"
    tally.frames_received(batch.encode())
    tally.frames_received(_envelope(9, "tool_use", 5, 6, layout).encode())
    assert (tally.received, tally.frames, tally.snapshots) == (10, 3, 1)  # messages, not frames
    assert list(tally.due) == [1000 * i + (7 if k == "tool_done" else 0) for i, k in enumerate(kinds)] + [5]
    assert tally.slow == (layout != "today")
    assert tally.summary(0, 1 << 62)["measured"] == 9


def test_the_raw_viewer_reads_frames_split_anywhere_and_answers_a_ping_between_them() -> None:
    import asyncio
    import struct

    from bench.viewers import RawViewer, Tally

    def frame(opcode: int, payload: bytes) -> bytes:
        head = bytes([0x80 | opcode])
        if len(payload) < 126:
            return head + bytes([len(payload)]) + payload
        return head + bytes([126]) + struct.pack("!H", len(payload)) + payload

    class Sink(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.sent: list[bytes] = []

        def write(self, data: bytes | bytearray | memoryview) -> None:
            self.sent.append(bytes(data))

        def close(self) -> None:
            pass

    batch = ("[" + ",".join(_envelope(i, "tool_use", i, i + 1) for i in range(5)) + "]").encode()
    stream = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
        + frame(1, b'{"type":"snapshot","seq":0,"epoch":"e1","alive":[]}')
        + frame(1, batch)
        + frame(9, b"hi")
        + frame(1, _envelope(7, "tool_done", 70, 71).encode())
        + frame(8, struct.pack("!H", 1000))
    )

    async def play() -> tuple[Tally, Sink, RawViewer]:
        tally, sink, ready = Tally(), Sink(), []
        viewer = RawViewer(b"GET / HTTP/1.1\r\n\r\n", tally, lambda: ready.append(1))
        viewer.connection_made(sink)
        for i in range(0, len(stream), 37):  # reads end mid-header and mid-payload
            viewer.data_received(stream[i : i + 37])
        assert ready == [1] and await viewer.done == 1000
        return tally, sink, viewer

    tally, sink, _ = asyncio.run(play())
    assert (tally.received, tally.frames, tally.snapshots) == (7, 3, 1)
    assert list(tally.due) == [0, 1, 2, 3, 4, 71]
    assert any(len(s) > 2 and s[0] == 0x8A for s in sink.sent), "no pong for the ping"


def test_capacity_grows_events_with_the_team_and_messages_with_its_square() -> None:
    from bench import capacity
    from bench.capacity import Figure, Inputs

    inp = Inputs(
        rate_median=Figure(0.1, "m"),
        rate_busy=Figure(1.0, "b"),
        redis_commands_per_event=Figure(10.0, "c"),
        redis_us_per_event=Figure(50.0, "u"),
        relay_messages_per_s=Figure(100_000.0, "r"),
        kib_per_viewer=Figure(40.0, "k"),
        relay_rest_kib=Figure(40_000.0, "k0"),
        bytes_per_message=Figure(300.0, "w"),
    )
    small, big = capacity.size(inp, 10, 1), capacity.size(inp, 1000, 3)
    assert (small["events_per_s"], small["messages_per_s"], small["relays"]) == (10.0, 100.0, 1)
    assert small["redis_commands_per_s"] == 100.0 and small["redis_core"] == pytest.approx(0.0005)
    assert small["relay_memory_kib"] == 40_000 + 10 * 40
    assert big["messages_per_s"] == 1000 * 3000 and big["relays"] == 30 and big["machines"] == 4
    assert big["network_bytes_per_s"] == 3_000_000 * 300
    # One relay carries D x 1.0 x D x 3 <= 100 000 up to D = sqrt(100 000 / 3); one core, 1e6 / 50 events/s.
    assert big["limits"]["pub/sub fan-out past one relay"] == pytest.approx((100_000 / 3) ** 0.5)
    assert big["first_limit"] == "pub/sub fan-out past one relay"
    assert "30 stateless relays behind a load balancer (4 machines of 8 cores)" in big["carried_by"]
    assert [r["developers"] for r in capacity.table(inp)] == [10, 100, 1000, 10, 100, 1000]
    missing = capacity.size(Inputs(*(Figure(None, "") for _ in range(8))), 10, 1)
    assert missing["relays"] is None and missing["first_limit"] is None and missing["carried_by"] == "–"


def test_capacity_reads_its_inputs_from_a_runs_results() -> None:
    from bench import capacity

    cell = {
        "system": "agentwatch",
        "viewers": 1,
        "received": 6000,
        "bytes": 1_800_000,
        "cpu_pct": {"redis-server": 5.0},
    }
    results = {
        "latency": {"cells": [cell | {"rate": 1000}, cell | {"rate": 100, "redis_ops": {"per_event": 12.0}}]},
        "fanout": {"plan": {"viewers": 200}, "relays": {"1": {"max_per_relay": 400_000, "all_passed": False}}},
        "memory": {"idle": {"agentwatch": {"kib_per_viewer": 36.0, "rss_kib_0": 38_000}}},
    }
    inp = capacity.inputs(results, {"median_per_s": 0.1, "busy_per_s": 0.9})
    assert inp.redis_commands_per_event.value == 12.0 and inp.redis_us_per_event.value == pytest.approx(500.0)
    assert inp.relay_messages_per_s.value == 400_000 and inp.bytes_per_message.value == 300.0
    assert inp.kib_per_viewer.value == 36.0 and inp.rate_busy.value == 0.9


def test_developer_rates_come_from_the_stamps_a_session_carries() -> None:
    from bench import dev_rate

    assert dev_rate.stamp({"_received_at": 1_763_990_000_123}) == pytest.approx(1_763_990_000.123)
    assert dev_rate.stamp({"_received_at": "2026-08-24T14:02:05.112Z"}) == pytest.approx(1_787_580_125.112)
    assert dev_rate.stamp({"logged_at": "2026-02-23T23:34:54"}) is not None and dev_rate.stamp({"x": 1}) is None
    assert dev_rate.peak_minute([0, 10, 20, 59.9, 60, 61, 200]) == 5
    # 11 lines over 10 minutes, all stamped, 3 in the busiest minute; a session of 30 s is left out.
    t0 = 1_763_990_000_000  # epoch ms, as the hook stamps
    timed = [{"session_id": "aaaaaaaa-1", "_received_at": t0 + 60_000 * m} for m in range(11)]
    timed += [{"session_id": "aaaaaaaa-1", "_received_at": t0 + 1000 * s} for s in (1, 2)]
    short = [{"session_id": "bbbbbbbb-2", "_received_at": t0 + 30_000 * i} for i in range(2)]
    rates, left_out = dev_rate.session_rates("src", timed + short)
    assert len(rates) == 1 and len(left_out) == 1 and "bbbbbbbb" in left_out[0]
    assert (rates[0].lines, rates[0].span_min, rates[0].per_min, rates[0].peak_min) == (13, 10.0, 1.3, 3.0)
    summary = dev_rate.summarize(rates, left_out)
    assert summary["median_per_min"] == 1.3 and summary["busy_per_min"] == 3.0
    assert summary["busy_per_s"] == pytest.approx(0.05)


def test_redis_commands_are_counted_from_info_commandstats() -> None:
    from bench import redis_ops

    before = redis_ops.parse("# Commandstats\r\ncmdstat_xadd:calls=10,usec=5,usec_per_call=0.5\r\ncmdstat_info:calls=3")
    after = redis_ops.parse("cmdstat_xadd:calls=25,usec=9\r\ncmdstat_evalsha:calls=5,usec=1\r\ncmdstat_info:calls=9")
    assert before == {"xadd": 10, "info": 3}
    assert redis_ops.delta(before, after) == {"xadd": 15, "evalsha": 5}  # measuring's own INFO left out
    assert redis_ops.per_event({"xadd": 15, "evalsha": 5}, 10)["per_event"] == 2.0


def test_a_py_spy_raw_profile_becomes_self_time_per_leaf_function() -> None:
    from bench import profile

    raw = (
        "<module> (relay/__main__.py:3);run (asyncio/base_events.py:9);send (relay/writer.py:40) 30\n"
        "<module> (relay/__main__.py:3);run (asyncio/base_events.py:9);send (relay/writer.py:41) 20\n"
        "<module> (relay/__main__.py:3);dumps (/usr/lib/python3.11/json/encoder.py:200) 60\n"
    )
    found = profile.top(raw)
    assert found["samples"] == 110
    assert found["functions"][0] == {"name": "dumps (json/encoder.py)", "samples": 60, "self_pct": 54.5}
    assert found["functions"][1]["name"] == "send (relay/writer.py)" and found["functions"][1]["samples"] == 50
    assert profile.leaf("a (x.py:1);b (/p/q/r.py:2)") == ("b", "q/r.py")


def test_a_goal_says_met_or_by_how_much_it_is_missed() -> None:
    from bench import goals

    assert goals.verdict(8.0, 10, "ms", "<") == "met"
    assert goals.verdict(117.0, 10, "ms", "<") == "**missed** by 107 ms (11.7x the goal)"
    assert goals.verdict(57_375, 100_000, "lines/s", ">=") == "**missed** by 42,625 lines/s (57% of the goal)"
    assert goals.verdict(40.0, 40, "KiB", "<=") == "met" and goals.verdict(None, 1, "", "<").startswith("–")
