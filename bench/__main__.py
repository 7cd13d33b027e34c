"""python -m bench [--smoke] [--out PATH] [--only SECTION ...]: measure everything, write the report.

Sections run one after the other on one private redis-server (never the machine's 6379), each starting its own
ingest and relay processes. Figures are reported, never judged: the exit code is non-zero only when a section
could not run at all.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import fanout, hook_bench, ingest_bench, latency, memory, page, replay_bench, report, watch_step
from bench.common import ROOT, Workload, log, machine, median, versions
from tests.stack import RedisServer

SECTIONS = ("hook", "ingest", "latency", "watch_step", "fanout", "memory", "page", "replay")


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
    args = parser.parse_args(argv)
    started = time.monotonic()
    command = "python -m bench" + (" --smoke" if args.smoke else "")
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
            for section in args.only:
                log(f"section {section}")
                try:
                    if section == "hook":
                        results["hook"] = hook_bench.run(5 if args.smoke else hook_bench.DEFAULT_ITERATIONS)
                    elif section == "ingest":
                        results["ingest"] = ingest_bench.run(server, work, args.smoke)
                    elif section == "latency":
                        results["latency"] = latency.run(server, work, args.smoke)
                    elif section == "watch_step":
                        results["watch_step"] = watch_step.run(server, work, args.smoke)
                    elif section == "fanout":
                        results["fanout"] = fanout.run(server, work, args.smoke)
                        if "failed" in results["fanout"]["cluster"]:  # a cluster that started and then broke
                            results["errors"]["fanout on a Redis Cluster"] = results["fanout"]["cluster"]["failed"]
                    elif section == "memory":
                        results["memory"] = memory.run(server, work, args.smoke)
                    elif section == "page":
                        results["page"] = page.run(server, work, args.smoke)
                    elif section == "replay":
                        results["replay"] = replay_bench.run(server, work, args.smoke)
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
