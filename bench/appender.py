"""The load generator: appends hook lines to the events file at a fixed rate, open loop, in its own process.

Line j is due at t0 + j/rate (wall clock, time.time_ns). Whatever is due is written at once, one write()
of whole lines with O_APPEND, without waiting for anything downstream: a stall anywhere shows up as latency,
never as a lower offered rate (no coordinated omission). Lines alternate PreToolUse / PostToolUse of one call.
Each call's tool_use_id carries both lines' due times, "lat_<pre_ns>_<post_ns>", so the viewer can compute each
event's latency against the time its line was due (a late appender counts against the system, not for it).

    python -m bench.appender '{"file": ..., "rate": 1000, "duration": 5, "t0_ns": ...}'
Prints one JSON line: lines written, and how late the appender itself was.
"""

from __future__ import annotations

import json
import os
import sys
import time

from bench.common import Workload, percentile


def run(
    file: str, rate: float, duration: float, t0_ns: int, sessions: int = 3, transcripts: str | None = None
) -> dict[str, float]:
    workload = Workload(sessions) if transcripts is None else Workload(sessions, transcripts)
    total = int(rate * duration) // 2 * 2
    period = 1e9 / rate
    fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    lateness: list[float] = []
    writes = 0
    try:
        while time.time_ns() < t0_ns:
            time.sleep(max(0.0, (t0_ns - time.time_ns()) / 1e9))
        j = 0
        caller = workload.next_caller()
        tool_use_id = ""
        while j < total:
            now = time.time_ns()
            chunk = []
            while j < total and t0_ns + int(j * period) <= now:
                due = t0_ns + int(j * period)
                if j % 2 == 0:
                    caller = workload.next_caller()
                    tool_use_id = f"lat_{due}_{t0_ns + int((j + 1) * period)}"
                    chunk.append(workload.pre(tool_use_id, due // 1_000_000, caller))
                else:
                    chunk.append(workload.post(tool_use_id, due // 1_000_000, caller))
                lateness.append((now - due) / 1e6)
                j += 1
            if chunk:
                os.write(fd, b"".join(chunk))
                writes += 1
            if j < total:
                wait = (t0_ns + int(j * period) - time.time_ns()) / 1e9
                if wait > 0:
                    time.sleep(wait)
    finally:
        os.close(fd)
    return {
        "lines": total,
        "writes": writes,
        "late_ms_p50": round(percentile(lateness, 50), 3),
        "late_ms_p99": round(percentile(lateness, 99), 3),
        "late_ms_max": round(max(lateness, default=0.0), 3),
    }


def main(argv: list[str]) -> int:
    config = json.loads(argv[0])
    print(json.dumps(run(**config)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
