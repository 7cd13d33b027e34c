"""Fan-out: the most messages/s a relay delivers across its viewers before p99 passes 100 ms.

The event rate is stepped up with a fixed number of viewers; a step passes when p99 <= 100 ms, at least 99%
of the messages arrived in time for the summary and no viewer was closed. Then the same with two relay
processes on the same Redis, the viewers split between them; then one relay on a Redis Cluster (3 masters +
3 replicas on loopback), where the commit script publishes with SPUBLISH and the relay holds an SSUBSCRIBE on
the prefix's shard, beside the single Redis. The viewers use the raw client (bench/viewers.py), so that the
measuring process costs as little CPU as possible on a machine it shares with the relays.

Beside the one relay, the baseline's relay (with its own ingest, bench/baseline.py) is stepped the same way,
each step right after the same step of agentwatch, both systems up throughout; each stops at its own first
failing step. A step past capacity is recorded as saturated (bench/harness.py run_cell) and fails.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from pathlib import Path
from typing import Any

from bench.baseline import Baseline
from bench.cluster import ClusterTarget, started_cluster
from bench.common import Workload, log
from bench.harness import System, run_cell, system
from tests.stack import RedisServer

P99_LIMIT_MS = 100.0
# The goal is 400 000 events/s to 200 viewers, i.e. 2 000 events/s: the steps go past it.
FULL: dict[str, Any] = {"viewers": 200, "rates": [50, 200, 500, 1000, 1500, 2000, 2500, 3000], "duration": 3.0}
SMOKE: dict[str, Any] = {"viewers": 4, "rates": [50, 100], "duration": 1.0}


def passes(cell: dict[str, Any]) -> bool:
    return bool(
        "saturated" not in cell
        and cell["p99_ms"] <= P99_LIMIT_MS
        and cell["delivered_pct"] >= 99.0
        and not cell["closed"]
    )


def stepped(
    redis: RedisServer | ClusterTarget,
    work: Path,
    plan: dict[str, Any],
    relays: int,
    label: str,
    base: Baseline | None = None,
) -> dict[str, Any]:
    """Step the rate up until a step fails; the best passing step is the figure. With `base`, the baseline's
    relay is stepped beside (interleaved), its figures under "baseline"."""
    setup = Workload().setup(int(time.time() * 1000))
    with contextlib.ExitStack() as stack:
        systems: dict[str, System] = {
            label: stack.enter_context(system("agentwatch", redis, work, relays=relays, setup=setup))
        }
        if base is not None and base.tree is not None:
            systems[f"{label} at {base.label}"] = stack.enter_context(
                system("baseline", redis, work, relays=relays, setup=setup, tree=base.tree)
            )
        steps: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
        for rate in plan["rates"]:
            going = [name for name in systems if not steps[name] or steps[name][-1]["passed"]]
            if not going:
                break
            for name in going:
                log(f"fan-out, {name}: {rate} events/s to {plan['viewers']} viewers")
                cell = run_cell(systems[name], rate, plan["viewers"], plan["duration"], 0.5, "raw", name)
                cell["passed"] = passes(cell)
                steps[name].append(cell)
    figures = [summary(found, relays) for found in steps.values()]
    out = figures[0]
    if len(figures) > 1:
        out["baseline"] = figures[1] | {"rev": base.rev if base else None}
    return out


def summary(steps: list[dict[str, Any]], relays: int) -> dict[str, Any]:
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


def run(server: RedisServer, work: Path, smoke: bool, base: Baseline) -> dict[str, Any]:
    plan = SMOKE if smoke else FULL
    out: dict[str, Any] = {"plan": plan, "p99_limit_ms": P99_LIMIT_MS, "relays": {}}
    out["baseline_note"] = base.note
    for relays in (1, 2):
        beside = base if relays == 1 else None
        out["relays"][str(relays)] = stepped(server, work, plan, relays, f"{relays} relay(s)", beside)
    one = out["relays"]["1"]["max_messages_per_s"]
    two = out["relays"]["2"]["max_messages_per_s"]
    out["scaling"] = round(two / one, 2) if one else None
    out["cluster"] = cluster(work, plan)
    return out
