"""Fan-out: the most messages/s a relay delivers across its viewers before p99 passes 100 ms.

The event rate is stepped up with a fixed number of viewers; a step passes when p99 <= 100 ms, at least 99%
of the messages arrived in time for the summary and no viewer was closed. Then the same with two relay
processes on the same Redis, the viewers split between them; then one relay on a Redis Cluster (3 masters +
3 replicas on loopback), where the commit script publishes with SPUBLISH and the relay holds an SSUBSCRIBE on
the prefix's shard, beside the single Redis. The viewers use the raw client (bench/viewers.py), so that the
measuring process costs as little CPU as possible on a machine it shares with the relays.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

from bench.cluster import ClusterTarget, started_cluster
from bench.common import Workload, log
from bench.harness import measured_run, system
from tests.stack import RedisServer

P99_LIMIT_MS = 100.0
FULL: dict[str, Any] = {"viewers": 200, "rates": [50, 100, 150, 200, 300, 400, 500, 600, 800], "duration": 4.0}
SMOKE: dict[str, Any] = {"viewers": 4, "rates": [50, 100], "duration": 1.0}


def passes(cell: dict[str, Any]) -> bool:
    return bool(cell["p99_ms"] <= P99_LIMIT_MS and cell["delivered_pct"] >= 99.0 and not cell["closed"])


def stepped(
    redis: RedisServer | ClusterTarget, work: Path, plan: dict[str, Any], relays: int, label: str
) -> dict[str, Any]:
    """Step the rate up until a step fails; the best passing step is the figure."""
    steps: list[dict[str, Any]] = []
    setup = Workload().setup(int(time.time() * 1000))
    with system("agentwatch", redis, work, relays=relays, setup=setup) as sysm:
        for rate in plan["rates"]:
            log(f"fan-out, {label}: {rate} events/s to {plan['viewers']} viewers")
            cell = measured_run(sysm, rate, plan["viewers"], plan["duration"], warmup=0.5, client="raw")
            cell["passed"] = passes(cell)
            cell["drain_s"] = sysm.drain()
            steps.append(cell)
            if not cell["passed"]:
                break
    best = max((s for s in steps if s["passed"]), key=lambda s: s["messages_per_s"], default=None)
    return {
        "steps": steps,
        "max_messages_per_s": best["messages_per_s"] if best else 0,
        "max_per_relay": round((best["messages_per_s"] if best else 0) / relays),
        "all_passed": all(s["passed"] for s in steps),
    }


def cluster(work: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """One relay on a Redis Cluster (sharded pub/sub); skipped, with the reason, where no cluster can start."""
    started = False
    try:
        with started_cluster() as target:
            started = True
            return stepped(target, work, plan, 1, "1 relay on a Redis Cluster")
    except Exception as exc:  # reported in the figure, never a failed benchmark run
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        if not started:  # no redis-server, no free ports, no cluster support here
            log(f"fan-out on a Redis Cluster skipped: no cluster could be started ({reason})")
            return {"skipped": f"no Redis Cluster could be started here ({reason})"}
        log(f"fan-out on a Redis Cluster failed:\n{traceback.format_exc()}")
        return {"failed": reason}


def run(server: RedisServer, work: Path, smoke: bool) -> dict[str, Any]:
    plan = SMOKE if smoke else FULL
    out: dict[str, Any] = {"plan": plan, "p99_limit_ms": P99_LIMIT_MS, "relays": {}}
    for relays in (1, 2):
        out["relays"][str(relays)] = stepped(server, work, plan, relays, f"{relays} relay(s)")
    one = out["relays"]["1"]["max_messages_per_s"]
    two = out["relays"]["2"]["max_messages_per_s"]
    out["scaling"] = round(two / one, 2) if one else None
    out["cluster"] = cluster(work, plan)
    return out
