"""docs/performance.md from the figures of one run: every table here is generated, none is typed by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import capacity_report, goals, hook_bench, replay_report
from bench.markdown import ms as _ms
from bench.markdown import ratio, table
from bench.report_memory import memory, naive, page
from bench.report_stream import fanout, latency, watch_step

HISTORY = Path(__file__).resolve().parent / "history.md"

# Section titles; the smoke test checks that each one is present with a table.
SECTIONS = {
    "goals": "Goals",
    "hook": "1. Hook cost",
    "ingest": "2. Ingest throughput",
    "latency": "3. End-to-end latency",
    "fanout": "4. Fan-out",
    "memory": "5. Memory",
    "naive": "6. The naive design, side by side",
    "page": "7. The page",
    "replay": "8. Replay",
    "capacity": "9. Capacity: a team of 10, 100 and 1 000 developers",
    "profile": "10. Where the time goes",
}
__all__ = ("SECTIONS", "render", "table")


# ---- sections


def hook(h: dict[str, Any]) -> str:
    return hook_bench.table(h)


def ingest(i: dict[str, Any]) -> str:
    rows = []
    for name, f in i["results"].items():
        ops = f.get("redis_ops") or {}
        rows.append(
            [
                name,
                f["lines_per_s"],
                f["seconds"],
                f["cpu_us_per_line"],
                f.get("redis_cpu_us_per_line"),
                ops.get("per_event"),
                f"{f['vs_raw_pipelined']:.0%}",
                f"{f['vs_per_line']:.2f}x",
                f"{f['vs_naive']:.1f}x",
                ", ".join(f"{x:,}" for x in f["runs"]),
            ]
        )
    slow = i.get("slow_lines")
    base = i.get("baseline") or {}
    head = (
        f"{i['measured_lines']:,} PreToolUse lines (median {i['line_bytes_median']} bytes) after "
        f"{i['lines'] - i['measured_lines']} set-up lines, 3 sessions x 4 agents; median of {i['reps']} runs, "
        "variants in rotating order, all into the same redis-server. The Pre/Post row is the same number of "
        "lines as PreToolUse/PostToolUse pairs (every call closed, as in real sessions)."
        + (f" The per-line and naive rows read the first {slow:,} lines only (they are 20-60x slower)." if slow else "")
        + (
            f" `ingest at {base['rev']} (baseline)` is the previous commit's ingest (bench/baseline.py)."
            if base.get("variant")
            else f" No baseline: {base['note']}."
            if base
            else ""
        )
        + " Redis columns: the redis-server's CPU and its commands (INFO commandstats, scripts' commands counted "
        "one by one, the bench's own polls left out) per line, over the ingest runs.\n\n"
    )
    main = table(
        [
            "variant",
            "lines/s",
            "seconds",
            "CPU µs/line (the variant's own process)",
            "Redis CPU µs/line",
            "Redis commands/line",
            "vs raw pipelined",
            "vs per-line",
            "vs naive",
            "runs (lines/s)",
        ],
        rows,
    )
    variant = base.get("variant")
    if variant and variant in i["results"]:
        new, old = i["results"]["agentwatch ingest"], i["results"][variant]
        main += (
            f"\n\nNew / baseline, same run: **{ratio(new['lines_per_s'], old['lines_per_s'])}** the lines/s, "
            f"{ratio(new['cpu_us_per_line'], old['cpu_us_per_line'])} the CPU per line."
        )
    idle = i["idle"]
    idle_rows = [[name, f"{pct:.2f}%"] for name, pct in idle["cpu_pct"].items()]
    idle_text = (
        f"\n\nIdle CPU: no new lines for {idle['seconds']:.0f} s, utime+stime from /proc/<pid>/stat, all "
        f"{len(idle['cpu_pct'])} processes in the same window (ingest's watch_step_ms = {idle['watch_step_ms']}).\n\n"
    )
    out = head + main + idle_text + table(["process", "CPU (% of one core)"], idle_rows)
    tx = i.get("transcripts")
    if tx:
        out += (
            f"\n\nTranscript following: two ingest processes at once, each fed {tx['rate']:,} hook lines/s by its own "
            f"appender for {tx['seconds']:.0f} s, one with `--no-transcripts`, one following {tx['transcript_files']} "
            f"transcript files that a writer fills meanwhile ({tx['transcript_lines']:,} assistant lines of about "
            "1.3 KB, two per response). CPU from /proc/<pid>/stat over the same window (bench/transcript_cost.py).\n\n"
            + table(
                ["ingest", "CPU (% of one core)"],
                [
                    ["without transcripts", tx["cpu_pct_without"]],
                    ["following transcripts", tx["cpu_pct_with"]],
                    ["overhead", f"{tx['overhead']:+.1%}"],
                ],
            )
        )
    return out


def profile(r: dict[str, Any]) -> str:
    """The top leaf functions (self time) of the relay under load and of ingest catching up."""
    found = [
        (r.get("latency") or {}).get("profile"),
        (r.get("ingest") or {}).get("profile"),
    ]
    out = [
        "Sampled with py-spy (`py-spy record --format raw --nonblocking`, bench/profile.py) on the real processes, "
        "in runs of their own beside the measured ones (sampling costs CPU on a shared machine): the relay over "
        "one more latency cell, ingest over one more catch-up of the throughput file. Self time = the share of "
        "the samples on CPU (idle waits left out) whose innermost frame is that function.\n\n"
    ]
    for p in found:
        if not p:
            continue
        if p.get("process") == "relay":
            figures = f"p50 {_ms(p.get('p50_ms'))} ms, p99 {_ms(p.get('p99_ms'))} ms in this cell"
            title = f"relay, {p['rate']:,} events/s to {p['viewers']} viewers ({figures})"
        else:
            title = f"ingest, catching up on {p.get('lines', 0):,} PreToolUse lines"
        out.append(f"**{title}**\n\n")
        if "failed" in p:
            out.append(table(["figure", "value"], [["not profiled", p["failed"]]]) + "\n\n")
            continue
        rows = [[f["name"], f"{f['self_pct']:.1f}%", f["samples"]] for f in p["functions"]]
        out.append(table(["function (file)", "self time", "samples"], rows))
        files = ", ".join(f"{f['name']} {f['self_pct']:.0f}%" for f in p["files"][:6])
        out.append(f"\n\n{p['samples']:,} samples on CPU; by file: {files}.\n\n")
    if len(out) == 1:
        out.append(table(["figure", "value"], [["not profiled", "neither the latency nor the ingest section ran"]]))
    return "".join(out).rstrip()


def render(r: dict[str, Any]) -> str:
    meta = r["meta"]
    out = [
        "# Performance",
        "",
        f"Generated by `{meta['command']}` on {meta['date']} in {meta['elapsed_s']:.0f} s"
        + (" (**smoke mode: tiny sizes, figures not meaningful**)" if meta["smoke"] else "")
        + ". Every table below comes from this one run; nothing is typed by hand. Benchmarks report figures "
        "and never fail on timing. Each comparison is between variants measured side by side in the same run, "
        "on the same machine, which is shared and noisy: read ratios, not absolute times.",
        "",
        "## Machine and versions",
        "",
        table(["", ""], [[k, v] for k, v in meta["machine"].items()]),
        "",
        table(["software", "version"], [[k, v] for k, v in meta["versions"].items()]),
        "",
        "Payloads: " + meta["payloads"],
        "",
    ]
    base = meta.get("baseline")
    if base:
        out += [
            f"Baseline: {base['rev']}, the previous commit's ingest and relay beside the new ones where a ratio is "
            f"quoted ({base['note']})."
            if base["present"]
            else f"Baseline: none in this run ({base['note']}).",
            "",
        ]
    renderers = {
        "goals": lambda: goals.render(r),
        "hook": lambda: hook(r["hook"]),
        "ingest": lambda: ingest(r["ingest"]),
        "latency": lambda: latency(r["latency"]) + (watch_step(r["watch_step"]) if "watch_step" in r else ""),
        "fanout": lambda: fanout(r["fanout"]),
        "memory": lambda: memory(r["memory"]),
        "naive": lambda: naive(r),
        "page": lambda: page(r["page"]),
        "replay": lambda: replay_report.render(r["replay"], table),
        "capacity": lambda: capacity_report.render(r["capacity"]),
        "profile": lambda: profile(r),
    }
    for key, title in SECTIONS.items():
        out.append(f"## {title}")
        out.append("")
        if key in ("goals", "naive") or key in r or key == "profile" and ("latency" in r or "ingest" in r):
            try:
                out.append(renderers[key]())
            except Exception as exc:  # a broken section must not lose the others
                out.append(f"(could not render: {exc!r})")
        elif key in r.get("errors", {}):
            out.append(f"(failed: {r['errors'][key]})")
        else:
            out.append("(not run)")
        out.append("")
    if HISTORY.exists():
        out.append(HISTORY.read_text().rstrip())
        out.append("")
    return "\n".join(out)
