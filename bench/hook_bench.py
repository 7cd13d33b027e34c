"""Wall time per hook invocation: the agentwatch hook vs a bare `sh -c :` spawn vs a naive `jq -c` hook.

Beside today's hook, the same run times the hook as it was before rotation (PREVIOUS_HOOK_COMMIT, from git) and
today's hook rotating on every call (a 1-byte limit: the size check, the lock and the rename each time), so the
cost of rotation is read off one run. Today's hook checks the size on about one call in 1024 for a 1 KiB line:
that shows in the mean, hardly in the median.

Each iteration runs every (payload, variant) pair once, in a rotating order, so drift in machine load hits all
of them alike. Time is taken with time.perf_counter around subprocess.run; stdin is a regular file holding
the payload (what is timed is the hook, not Python feeding a pipe). The events file is emptied between runs,
outside the timed part.

    python bench/hook_bench.py [--smoke] [--iterations N] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOOK = ROOT / "hooks" / "agentwatch-hook.sh"
DEFAULT_ITERATIONS = 200
SMOKE_ITERATIONS = 20
# The hook before the events file was made private and rotated (issue 9, item 3).
PREVIOUS_HOOK_COMMIT = "aa380ca"
PREVIOUS = "hook before rotation, aa380ca (sh)"
ROTATING = "agentwatch hook, rotating every call (sh)"
# What a naive hook does: reformat with jq, stamp, append (jq writes 4 KiB chunks: lines interleave).
NAIVE_JQ_HOOK = """#!/bin/sh
jq -c '{_received_at: (now * 1000 | floor)} + .' >> "$AGENTWATCH_EVENTS_FILE"
"""


def payloads() -> dict[str, bytes]:
    """Realistic payloads: a Bash PreToolUse (~1 KiB) and Read PostToolUse responses of 16 KiB and 1 MiB."""
    common = {
        "session_id": "7f3c2a91-5b6e-4d0a-9c1e-2f8b4a6d3e17",
        "prompt_id": "c0a8e2f4-1d3b-4e5f-8a9b-6c7d8e9f0a1b",
        "transcript_path": "/Users/alex/.claude/projects/-Users-alex-code-acme-shop/7f3c2a91.jsonl",
        "cwd": "/Users/alex/code/acme-shop",
        "permission_mode": "acceptEdits",
        "effort": {"level": "high"},
        "agent_id": "a3f9c1d27b84e065",
        "agent_type": "Explore",
    }
    small: dict[str, Any] = {
        **common,
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {
            "command": "npm test -- src/checkout --reporter=dot 2>&1 | tail -n 40",
            "description": "Run the checkout test suite and show the last 40 lines of output",
            "timeout": 120000,
        },
        "tool_use_id": "toolu_01Hc7XwQm2RkP9sTz4bLq8Va",
    }
    small["tool_input"]["comment"] = "x" * max(0, 1024 - len(_compact(small)) - len(',"comment":""'))
    out = {"1 KiB": _compact(small)}
    line = "export function total(cart: Cart): Money {\\n  return cart.items.reduce((s, i) => s + i.price, 0);\\n}\n"
    for label, size in (("16 KiB", 16 << 10), ("1 MiB", 1 << 20)):
        content = (line * (size // len(line) + 1))[:size]
        read = {
            **common,
            "hook_event_name": "PostToolUse",
            "tool_name": "Read",
            "tool_input": {"file_path": "/Users/alex/code/acme-shop/src/checkout/totals.ts"},
            "tool_response": {"type": "text", "file": {"filePath": "/x/totals.ts", "content": content}},
            "tool_use_id": "toolu_01JpD3vN8eYbW5qK2m",
            "duration_ms": 3,
        }
        out[label] = _compact(read)
    return out


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def previous_hook(work: Path) -> Path | None:
    """The hook at PREVIOUS_HOOK_COMMIT, written to work; None outside a git checkout that has it."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{PREVIOUS_HOOK_COMMIT}:hooks/agentwatch-hook.sh"],
            capture_output=True,
            check=False,
        )
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    path = work / "previous-hook.sh"
    path.write_bytes(proc.stdout)
    return path


def variants(work: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """name -> (argv, extra environment)."""
    naive = work / "naive-jq-hook.sh"
    naive.write_text(NAIVE_JQ_HOOK)
    found: dict[str, tuple[list[str], dict[str, str]]] = {
        "bare `sh -c :`": (["sh", "-c", ":"], {}),
        "agentwatch hook (sh)": (["sh", str(HOOK)], {}),
    }
    previous = previous_hook(work)
    if previous is not None:
        found[PREVIOUS] = (["sh", str(previous)], {})
    found[ROTATING] = (["sh", str(HOOK)], {"AGENTWATCH_MAX_FILE_BYTES": "1"})
    found["agentwatch hook (bash)"] = (["bash", str(HOOK)], {})
    found["naive `jq -c` hook"] = (["sh", str(naive)], {})
    return {
        name: (argv, extra)
        for name, (argv, extra) in found.items()
        if shutil.which(argv[0]) and (argv[-1] != str(naive) or shutil.which("jq"))
    }


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def run(iterations: int) -> dict[str, Any]:
    """Runs the benchmark; returns {"iterations", "sh", "results": {payload: {variant: figures}}}.

    Figures per (payload, variant): bytes (payload size), median_ms, mean_ms, p99_ms, and median_vs_bare_sh.
    """
    with tempfile.TemporaryDirectory(prefix="agentwatch-hook-bench-") as tmp:
        work = Path(tmp)
        events = work / "events.jsonl"
        env = {**os.environ, "AGENTWATCH_EVENTS_FILE": str(events)}
        rotated = work / "events.jsonl.1"
        for key in ("AGENTWATCH_BYPASS", "AGENTWATCH_DEBUG", "AGENTWATCH_MAX_LINE_BYTES", "AGENTWATCH_MAX_FILE_BYTES"):
            env.pop(key, None)
        sources = {}
        for label, body in payloads().items():
            sources[label] = work / f"payload-{label.replace(' ', '')}.json"
            sources[label].write_bytes(body)
        cmds = variants(work)
        pairs = [(label, name) for label in sources for name in cmds]
        samples: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
        for i in range(iterations):
            shift = i % len(pairs)
            for label, name in pairs[shift:] + pairs[:shift]:
                argv, extra = cmds[name]
                with sources[label].open("rb") as stdin:
                    start = time.perf_counter()
                    proc = subprocess.run(argv, stdin=stdin, env={**env, **extra}, capture_output=True, check=False)
                    elapsed = time.perf_counter() - start
                if proc.returncode != 0 or proc.stdout or proc.stderr:
                    raise RuntimeError(f"{name} on {label}: exit {proc.returncode}, {proc.stdout!r} {proc.stderr!r}")
                written = events if name != ROTATING else rotated
                if name != "bare `sh -c :`" and (not written.exists() or written.stat().st_size == 0):
                    raise RuntimeError(f"{name} on {label} wrote nothing")
                events.write_bytes(b"")
                rotated.unlink(missing_ok=True)
                samples[(label, name)].append(elapsed * 1000)
        results: dict[str, dict[str, dict[str, float]]] = {}
        for label in sources:
            bare = statistics.median(samples[(label, "bare `sh -c :`")])
            results[label] = {}
            for name in cmds:
                runs = samples[(label, name)]
                median = statistics.median(runs)
                results[label][name] = {
                    "bytes": sources[label].stat().st_size,
                    "median_ms": round(median, 3),
                    "mean_ms": round(statistics.fmean(runs), 3),
                    "p99_ms": round(_percentile(runs, 99), 3),
                    "median_vs_bare_sh": round(median / bare, 2),
                }
    sh = os.path.realpath(shutil.which("sh") or "sh")
    return {"iterations": iterations, "sh": sh, "results": results}


def table(figures: dict[str, Any]) -> str:
    rows = [
        f"Hook wall time per invocation, {figures['iterations']} interleaved runs each, sh = {figures['sh']}",
        "",
        "| payload | variant | median ms | mean ms | p99 ms | median vs bare sh |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, by_variant in figures["results"].items():
        for name, f in by_variant.items():
            rows.append(
                f"| {label} | {name} | {f['median_ms']:.2f} | {f['mean_ms']:.2f} | {f['p99_ms']:.2f} "
                f"| {f['median_vs_bare_sh']:.2f}x |"
            )
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_ITERATIONS} iterations")
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args(argv)
    figures = run(SMOKE_ITERATIONS if args.smoke else args.iterations)
    print(json.dumps(figures, indent=2) if args.json else table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
