"""Ingest's watch step (ingest/settings.py watch_step_ms), side by side: idle CPU against the latency it adds.

watchfiles wakes every `step` ms to look for changes and yields once a step passes without a new one, so a
line waits between one and two steps before ingest reads it; a shorter step costs wake-ups while idle. Each
value runs as a real ingest process (bench/ingest_variant.py) with a real relay: the idle CPU of all of them
is read in the same window, then each gets the same short latency cells, one after the other.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from bench.common import CpuMeter, Workload, log
from bench.harness import run_cell, system
from ingest.settings import Settings
from tests.stack import RedisServer

FULL: dict[str, Any] = {"steps": [1, 2, 5], "idle_s": 10.0, "rates": [100, 1000], "duration": 4.0}
SMOKE: dict[str, Any] = {"steps": [1, 5], "idle_s": 1.0, "rates": [100], "duration": 1.5}


def run(server: RedisServer, work: Path, smoke: bool) -> dict[str, Any]:
    plan = SMOKE if smoke else FULL
    default = Settings(events_file=Path("events.jsonl")).watch_step_ms
    setup = Workload().setup(int(time.time() * 1000))
    with contextlib.ExitStack() as stack:
        systems = {
            step: stack.enter_context(system("agentwatch", server, work, setup=setup, watch_step_ms=step))
            for step in plan["steps"]
        }
        time.sleep(1.0)
        log(f"watch step: idle CPU of {len(systems)} ingests for {plan['idle_s']:.0f} s")
        meter = CpuMeter({str(step): s.ingest.proc.pid for step, s in systems.items()})
        time.sleep(plan["idle_s"])
        idle = meter.stop()
        cells = []
        for rate in plan["rates"]:
            for step, sysm in systems.items():
                log(f"watch step {step} ms: {rate} events/s to 1 viewer")
                cell = run_cell(sysm, rate, 1, plan["duration"], warmup=0.5, label=f"watch step {step} ms")
                cell["step_ms"] = step
                cells.append(cell)
    return {"plan": plan, "default_ms": default, "idle_cpu_pct": idle, "cells": cells}
