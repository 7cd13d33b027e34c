"""End-to-end latency, append -> ingest -> Redis -> relay -> WebSocket viewer, open loop at fixed rates.

One redis-server, real ingest and relay processes, the appender in its own process and the viewers in another
(bench/appender.py, bench/viewers.py). Each cell: `rate` lines/s (each line is one event) for `duration` s to
`viewers` viewers; the first second is warm-up. agentwatch runs the whole grid; the baseline (the previous
commit's ingest and relay, bench/baseline.py) runs the cells whose ratio the goals quote, each right after the
same cell of agentwatch, both systems up throughout; then the naive model runs the grid. A saturated cell is
recorded as such and the grid goes on (bench/harness.py run_cell). Last, one more agentwatch cell at 1 000
events/s to 100 viewers with py-spy on the relay, outside the tables (sampling costs CPU on a shared machine).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from bench import profile
from bench.baseline import Baseline
from bench.common import Workload, log
from bench.harness import System, run_cell, system
from tests.stack import RedisServer

# Cells past every system's capacity run shorter: their figure is "saturated" either way.
FULL: dict[str, Any] = {
    "rates": [100, 1000, 5000],
    "viewers": [1, 100, 500],
    "duration": 6.0,
    "short": [[5000, 500, 3.0], [1000, 500, 4.0]],
    "baseline_cells": [[1000, 100], [5000, 100]],
    "profile_cell": [1000, 100, 6.0],
}
SMOKE: dict[str, Any] = {
    "rates": [200],
    "viewers": [2],
    "duration": 1.5,
    "short": [],
    "baseline_cells": [[200, 2]],
    "profile_cell": [200, 2, 1.5],
}


def duration(plan: dict[str, Any], rate: int, viewers: int) -> float:
    for r, v, seconds in plan["short"]:
        if (r, v) == (rate, viewers):
            return float(seconds)
    return float(plan["duration"])


def run(
    server: RedisServer, work: Path, smoke: bool, base: Baseline, kinds: tuple[str, ...] = ("agentwatch", "naive")
) -> dict[str, Any]:
    plan = SMOKE if smoke else FULL
    cells: list[dict[str, Any]] = []
    out: dict[str, Any] = {"plan": plan, "cells": cells, "baseline": {"rev": base.rev, "note": base.note}}
    paired = {(r, v) for r, v in plan["baseline_cells"]} if base.tree is not None else set()
    for kind in kinds:
        setup = Workload().setup(int(time.time() * 1000))
        with contextlib.ExitStack() as stack:
            sysm = stack.enter_context(system(kind, server, work, setup=setup))
            beside = None
            if kind == "agentwatch" and paired:
                beside = stack.enter_context(system("baseline", server, work, setup=setup, tree=base.tree))
            for viewers in plan["viewers"]:
                for rate in plan["rates"]:
                    seconds = duration(plan, rate, viewers)
                    warmup = min(1.0, seconds / 3)
                    for s in (sysm, beside if (rate, viewers) in paired else None):
                        if s is None:
                            continue
                        log(f"latency {s.kind}: {rate} events/s to {viewers} viewers, {seconds:g} s")
                        cell = run_cell(s, rate, viewers, seconds, warmup=warmup)
                        cell["system"] = s.kind
                        cells.append(cell)
            if kind == "agentwatch":
                out["profile"] = profiled(sysm, work, plan["profile_cell"])
    return out


def profiled(sysm: System, work: Path, cell: list[float]) -> dict[str, Any]:
    """The relay's profile over one more cell; the cell's own figures are kept beside it, not in the tables."""
    rate, viewers, seconds = int(cell[0]), int(cell[1]), float(cell[2])
    log(f"latency agentwatch: {rate} events/s to {viewers} viewers with py-spy on the relay")
    pid, out = sysm.relays[0].proc.pid, work / "relay-profile.txt"
    recordings: list[profile.Recording] = []
    figures = run_cell(
        sysm, rate, viewers, seconds, on_load=lambda: recordings.append(profile.Recording(pid, seconds, out))
    )
    found: dict[str, Any] = (
        recordings[0].result() if recordings else {"failed": f"the cell never started: {figures.get('saturated')}"}
    )
    found.update(
        process="relay",
        rate=rate,
        viewers=viewers,
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        cpu_pct=figures["cpu_pct"].get("relay"),
    )
    return found
