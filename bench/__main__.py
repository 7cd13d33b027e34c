"""python -m bench [--smoke] [--out PATH] [--only SECTION ...] [--baseline REV|none]: measure, write the report.

Sections run one after the other on one private redis-server (never the machine's 6379), each starting its own
ingest and relay processes; where a goal quotes a ratio, the baseline's (REV's) ingest and relay run beside the
new ones in the same section (bench/baseline.py). Figures are reported, never judged: a cell past the system's
capacity is recorded as saturated and the run goes on. The exit code is non-zero only when a section could not
run to its end; the capacity section runs last, from the other sections' figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import (
    baseline,
    capacity,
    dev_rate,
    fanout,
    hook_bench,
    ingest_bench,
    latency,
    memory,
    page,
    replay_bench,
    report,
    watch_step,
)
from bench.common import ROOT, Workload, log, machine, median, versions
from tests.stack import RedisServer

SECTIONS = ("hook", "ingest", "latency", "watch_step", "fanout", "memory", "page", "replay", "capacity")


def payload_note() -> str:
    hooks = ", ".join(f"{label}: {len(body):,} bytes" for label, body in hook_bench.payloads().items())
    workload = Workload()
    lines = [len(workload.pre(f"toolu_{i:08d}", 1_763_990_000_000)) for i in range(12)]
    return (
        f"hook benchmark payloads {hooks}; the ingest/latency/fan-out workload is PreToolUse/PostToolUse lines of "
        f"{min(lines)}-{max(lines)} bytes (median {median([float(x) for x in lines]):.0f}), 3 sessions x 4 agents; "
        "an event envelope on the WebSocket is about 300 bytes."
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that every benchmark runs")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    parser.add_argument("--only", nargs="*", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument(
        "--baseline",
        default=baseline.BASELINE_REV,
        metavar="REV",
        help=f"git revision whose ingest and relay run beside the new ones ({baseline.BASELINE_REV}); none: off",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    command = "python -m bench" + (" --smoke" if args.smoke else "")
    if args.baseline != baseline.BASELINE_REV:
        command += f" --baseline {args.baseline}"
    results: dict[str, Any] = {"errors": {}}
    log(f"{command}: machine and versions")
    results["meta"] = {
        "command": command,
        "smoke": args.smoke,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "versions": versions(),
        "payloads": payload_note(),
    }
    server = RedisServer()
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="agentwatch-bench-") as tmp:
            work = Path(tmp)
            base = baseline.materialize(args.baseline, work)
            results["meta"]["baseline"] = {"rev": base.rev, "present": base.tree is not None, "note": base.note}
            log(f"baseline {base.rev}: {base.note}")
            for section in sorted(args.only, key=SECTIONS.index):
                log(f"section {section}")
                try:
                    run_section(section, results, server, work, args.smoke, base)
                except Exception:
                    results["errors"][section] = traceback.format_exc(limit=3).strip().splitlines()[-1]
                    log(f"section {section} failed:\n{traceback.format_exc()}")
    finally:
        server.close()
    results["meta"]["elapsed_s"] = time.monotonic() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.render(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    log(f"wrote {args.out} in {results['meta']['elapsed_s']:.0f} s")
    return 1 if results["errors"] else 0


def run_section(
    section: str, results: dict[str, Any], server: RedisServer, work: Path, smoke: bool, base: baseline.Baseline
) -> None:
    if section == "hook":
        results["hook"] = hook_bench.run(5 if smoke else hook_bench.DEFAULT_ITERATIONS)
    elif section == "ingest":
        results["ingest"] = ingest_bench.run(server, work, smoke, base)
    elif section == "latency":
        results["latency"] = latency.run(server, work, smoke, base)
    elif section == "watch_step":
        results["watch_step"] = watch_step.run(server, work, smoke)
    elif section == "fanout":
        results["fanout"] = fanout.run(server, work, smoke, base)
        if "failed" in results["fanout"]["cluster"]:  # a cluster that started and then broke
            results["errors"]["fanout on a Redis Cluster"] = results["fanout"]["cluster"]["failed"]
    elif section == "memory":
        results["memory"] = memory.run(server, work, smoke, base)
    elif section == "page":
        results["page"] = page.run(server, work, smoke, base)
    elif section == "replay":
        results["replay"] = replay_bench.run(server, work, smoke)
    elif section == "capacity":
        developers = dev_rate.measure()
        inputs = capacity.inputs(results, developers)
        results["capacity"] = {
            "developers": developers,
            "inputs": dataclasses.asdict(inputs),
            "rows": capacity.table(inputs),
            "cores_per_machine": capacity.CORES_PER_MACHINE,
        }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
