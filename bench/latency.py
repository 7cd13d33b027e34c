"""End-to-end latency, append -> ingest -> Redis -> relay -> WebSocket viewer, open loop at fixed rates.

For each system (agentwatch, then the naive model), one redis-server, real ingest and relay processes, the
appender in its own process and the viewers in another (bench/appender.py, bench/viewers.py). Each cell:
`rate` lines/s (each line is one event) for `duration` s to `viewers` viewers; the first second is warm-up.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import Workload, log
from bench.harness import measured_run, system
from tests.stack import RedisServer

FULL: dict[str, Any] = {"rates": [100, 1000, 5000], "viewers": [1, 100, 500], "duration": 6.0}
SMOKE: dict[str, Any] = {"rates": [200], "viewers": [2], "duration": 1.5}


def run(
    server: RedisServer, work: Path, smoke: bool, kinds: tuple[str, ...] = ("agentwatch", "naive")
) -> dict[str, Any]:
    plan = SMOKE if smoke else FULL
    cells: list[dict[str, Any]] = []
    for kind in kinds:
        setup = Workload().setup(int(time.time() * 1000))
        with system(kind, server, work, setup=setup) as sysm:
            for viewers in plan["viewers"]:
                for rate in plan["rates"]:
                    log(f"latency {kind}: {rate} events/s to {viewers} viewers")
                    result = measured_run(sysm, rate, viewers, plan["duration"], warmup=min(1.0, plan["duration"] / 3))
                    result["system"] = kind
                    result["drain_s"] = sysm.drain()  # the backlog it left: nothing carries over to the next cell
                    cells.append(result)
    return {"plan": plan, "cells": cells}
