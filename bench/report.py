"""docs/performance.md from the figures of one run: every table here is generated, none is typed by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench import capacity_report, goals, hook_bench, replay_report
from bench.markdown import closed as _closed
from bench.markdown import kib as _kib
from bench.markdown import ms as _ms
from bench.markdown import ratio, table

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


def _cell_at(latency: dict[str, Any], system: str, rate: int, viewers: int) -> dict[str, Any] | None:
    return goals.cell_at(latency, system, rate, viewers)


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


LATENCY_LABELS = {"agentwatch": "agentwatch", "baseline": "baseline", "naive": "naive design (bench/naive.py)"}


def latency(lat: dict[str, Any]) -> str:
    plan = lat["plan"]
    short = ", ".join(f"{r:,} events/s to {v} viewers {t:g} s" for r, v, t in plan.get("short", []))
    base = lat.get("baseline") or {}
    head = (
        f"Open loop: the appender (own process) writes line j at t0 + j/rate; latency = receipt at the viewer "
        f"(time.time_ns) minus the time the line was due, for every event in the window after a warm-up, "
        f"{plan['duration']:g} s per cell" + (f" ({short}: past every system's capacity)" if short else "") + ". "
        "Viewers: the websockets client in one process; an event is timed wherever it is in a frame, and "
        "`msgs/frame` says how many messages a frame carried on average. CPU: % of one core over the cell (2 cores "
        "in all, shared with the load generator and the viewers). `delivered` = measured events received by the "
        "end of the cell / (lines in the window x viewers); `closed` = viewers the relay closed (code: count). "
        "`/health ms` = the relay's slowest answer to /health (asked every 0.25 s during the cell; /ready and "
        "/stats each every second, their slowest in the goals). `Redis cmds/event` = INFO commandstats over the "
        "cell / lines appended. A cell past capacity (viewers could not connect, /stats unanswered, backlog not "
        "drained) is marked saturated below its table, with what was seen."
        + (
            f" The baseline (the previous commit's ingest and relay, {base['rev']}) runs the cells whose ratio the "
            "goals quote, each right after agentwatch's."
            if base.get("rev") and base.get("rev") != "none"
            else ""
        )
        + "\n\n"
    )
    out = [head]
    for system, label in LATENCY_LABELS.items():
        cells = [c for c in lat["cells"] if c["system"] == system]
        if not cells:
            continue
        if system == "baseline":
            label = f"baseline ({base.get('rev')})"
        out.append(f"**{label}**\n\n")
        out.append(_latency_table(cells))
        out.append("\n\n")
        out.append(_saturated_notes(cells))
    out.append(_beside_baseline(lat))
    return "".join(out).rstrip()


def _latency_table(cells: list[dict[str, Any]]) -> str:
    rows = []
    for c in cells:
        cpu = c["cpu_pct"]
        rows.append(
            [
                c["rate"],
                c["connected"],
                c["messages_per_s"],
                _ms(c["p50_ms"]),
                _ms(c["p99_ms"]),
                _ms(c["p999_ms"]),
                _ms(c["max_ms"]),
                f"{c['delivered_pct']:.1f}%",
                _closed(c["closed"]),
                round(c["received"] / c["frames"], 1) if c.get("frames") else None,
                c.get("relay_cpu_us_per_message"),
                f"{cpu.get('relay', 0):.0f} / {cpu.get('ingest', 0):.0f} / {cpu.get('redis-server', 0):.0f} / "
                f"{cpu.get('viewers', 0):.0f}",
                (c.get("redis_ops") or {}).get("per_event"),
                (c.get("probe") or {}).get("health_ms_max"),
                c["appender"]["late_ms_p99"],
            ]
        )
    return table(
        [
            "events/s",
            "viewers",
            "messages/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "delivered",
            "closed",
            "msgs/frame",
            "relay CPU µs/message",
            "CPU % relay / ingest / redis / viewers",
            "Redis cmds/event",
            "/health ms",
            "appender late p99 ms",
        ],
        rows,
    )


def _saturated_notes(cells: list[dict[str, Any]]) -> str:
    notes = [
        f"- saturated: {c['rate']:,} events/s to {c['viewers']} viewers: {c['saturated']}"
        for c in cells
        if c.get("saturated")
    ]
    return "\n".join(notes) + "\n\n" if notes else ""


def _beside_baseline(lat: dict[str, Any]) -> str:
    """Each cell the baseline ran, agentwatch's figure beside it and new / baseline."""
    rows = []
    for old in (c for c in lat["cells"] if c["system"] == "baseline"):
        new = _cell_at(lat, "agentwatch", old["rate"], old["viewers"])
        if new is None:
            continue
        rows.append(
            [
                f"{old['rate']:,} events/s, {old['viewers']} viewers",
                f"{_ms(new['p50_ms'])} / {_ms(old['p50_ms'])}",
                ratio(new["p50_ms"], old["p50_ms"]),
                f"{_ms(new['p99_ms'])} / {_ms(old['p99_ms'])}",
                ratio(new["p99_ms"], old["p99_ms"]),
                f"{new['delivered_pct']:.1f}% / {old['delivered_pct']:.1f}%",
                f"{_ms(new.get('relay_cpu_us_per_message'))} / {_ms(old.get('relay_cpu_us_per_message'))}",
                ratio(new.get("relay_cpu_us_per_message"), old.get("relay_cpu_us_per_message")),
            ]
        )
    if not rows:
        return ""
    return "**agentwatch beside the baseline, same run** (new / baseline)\n\n" + table(
        [
            "cell",
            "p50 ms",
            "p50 new/baseline",
            "p99 ms",
            "p99 new/baseline",
            "delivered",
            "relay CPU µs/message",
            "CPU new/baseline",
        ],
        rows,
    )


def watch_step(w: dict[str, Any]) -> str:
    rows = []
    for step in w["plan"]["steps"]:
        row: list[Any] = [
            f"{step} ms" + (" (the default)" if step == w["default_ms"] else ""),
            w["idle_cpu_pct"][str(step)],
        ]
        for rate in w["plan"]["rates"]:
            cell = next(c for c in w["cells"] if c["step_ms"] == step and c["rate"] == rate)
            row.append(f"{_ms(cell['p50_ms'])} / {_ms(cell['p99_ms'])}")
        rows.append(row)
    headers = ["watch_step_ms", "ingest idle CPU %"] + [
        f"p50 / p99 ms at {r:,} events/s, 1 viewer" for r in w["plan"]["rates"]
    ]
    return (
        "\n\n**Ingest's watch step, side by side** (ingest/settings.py `watch_step_ms`; watchfiles yields a change "
        "once a step passes without a new one, so a line waits one to two steps; a shorter step wakes more often "
        f"while idle). Idle CPU of all of them in the same {w['plan']['idle_s']:.0f} s window, then "
        f"{w['plan']['duration']:.0f} s cells one after the other:\n\n" + table(headers, rows)
    )


def fanout(f: dict[str, Any]) -> str:
    plan = f["plan"]
    one = f["relays"]["1"]
    old = one.get("baseline")
    out = [
        f"{plan['viewers']} viewers (raw client, one process), event rate stepped up, {plan['duration']:.0f} s per "
        f"step; a step passes with p99 <= {f['p99_limit_ms']:.0f} ms, >= 99% delivered, no viewer closed and "
        "not saturated; the stepping stops at the first failing step. "
        "With two relays the viewers are split evenly between them. `relay CPU µs/message` = the relays' CPU "
        "seconds over the step / messages the viewers received: 1e6 / it is what one relay process could deliver "
        "with a whole core to itself. `msgs/frame` = messages per WebSocket frame; `/health ms` = the first relay's "
        "slowest answer to /health during the step."
        + (
            f" The baseline's relay ({old['rev']}) is stepped beside the one relay, each step right after agentwatch's."
            if old
            else f" No baseline: {f['baseline_note']}."
            if f.get("baseline_note") and not old
            else ""
        )
        + "\n\n"
    ]
    summary = []
    for relays, data in f["relays"].items():
        summary.append(
            [relays, data["max_messages_per_s"], data["max_per_relay"], "yes" if data["all_passed"] else "no"]
        )
    if old:
        summary.append(
            [
                f"1, baseline ({old['rev']})",
                old["max_messages_per_s"],
                old["max_per_relay"],
                "yes" if old["all_passed"] else "no",
            ]
        )
    out.append(
        table(["relay processes", "max messages/s (passing step)", "per relay process", "every step passed"], summary)
    )
    out.append(
        f"\n\nTwo relays / one relay: **{f['scaling']}x**."
        if f["scaling"]
        else "\n\nTwo relays / one relay: – (no passing step with one relay)."
    )
    if old:
        out.append(
            f" One relay, new / baseline: **{ratio(one['max_messages_per_s'], old['max_messages_per_s'])}** "
            "the messages/s at the best passing step."
        )
    cost = _relay_cost(f)
    if cost:
        out.append(
            f" One relay's CPU per message at its last passing step: {cost:.1f} µs, i.e. about "
            f"{1e6 / cost:,.0f} messages/s for a relay with a core of its own."
        )
    out.append("\n\n")
    blocks = [(f"{r} relay process{'es' if r != '1' else ''}", d["steps"]) for r, d in f["relays"].items()]
    if old:
        blocks.insert(1, (f"1 relay process, baseline ({old['rev']})", old["steps"]))
    for title, steps in blocks:
        out.append(f"**{title}**\n\n")
        out.append(_fanout_steps(steps))
        out.append("\n\n")
        out.append(_saturated_notes(steps))
    if "cluster" in f:
        out.append(_cluster_beside_single(f))
    return "".join(out).rstrip()


def _fanout_steps(steps: list[dict[str, Any]]) -> str:
    rows = []
    for s in steps:
        cpu = s["cpu_pct"]
        relay_cpu = " + ".join(f"{v:.0f}" for k, v in cpu.items() if k.startswith("relay"))
        rows.append(
            [
                s["rate"],
                s["messages_per_s"],
                _ms(s["p50_ms"]),
                _ms(s["p99_ms"]),
                f"{s['delivered_pct']:.1f}%",
                _closed(s["closed"]),
                round(s["received"] / s["frames"], 1) if s.get("frames") else None,
                relay_cpu or None,
                s.get("relay_cpu_us_per_message"),
                f"{cpu.get('viewers', 0):.0f}",
                (s.get("probe") or {}).get("health_ms_max"),
                "pass" if s["passed"] else "FAIL",
            ]
        )
    return table(
        [
            "events/s",
            "messages/s",
            "p50 ms",
            "p99 ms",
            "delivered",
            "closed",
            "msgs/frame",
            "relay CPU %",
            "relay CPU µs/message",
            "viewers CPU %",
            "/health ms",
            "",
        ],
        rows,
    )


def _cluster_beside_single(f: dict[str, Any]) -> str:
    """One relay on a single Redis and one on a Redis Cluster (sharded pub/sub), step by step, side by side."""
    c = f["cluster"]
    out = ["**One relay: a single Redis beside a Redis Cluster (sharded pub/sub)**\n\n"]
    if "skipped" in c:
        return out[0] + f"Skipped: {c['skipped']}.\n\n" + table(["figure", "value"], [["skipped", c["skipped"]]])
    if "failed" in c:
        return out[0] + f"(failed: {c['failed']})\n\n" + table(["figure", "value"], [["failed", c["failed"]]])
    single = {s["rate"]: s for s in f["relays"]["1"]["steps"]}
    sharded = {s["rate"]: s for s in c["steps"]}
    out.append(
        "The same steps with one relay on a Redis Cluster of 3 masters and 3 replicas on this machine (six more "
        "redis-server processes): the commit script publishes with `SPUBLISH` on the master of the prefix's slot "
        "and the relay holds an `SSUBSCRIBE` there. `Redis CPU %` is that one master's (the single Redis: the "
        "only server). A `–` is a step not run (the stepping stops at the first failing step).\n\n"
    )
    out.append(
        table(
            ["", "single Redis", "Redis Cluster"],
            [
                ["max messages/s (passing step)", f["relays"]["1"]["max_messages_per_s"], c["max_messages_per_s"]],
                [
                    "every step passed",
                    "yes" if f["relays"]["1"]["all_passed"] else "no",
                    "yes" if c["all_passed"] else "no",
                ],
            ],
        )
    )
    out.append("\n\n")
    rows = []
    for rate in sorted(set(single) | set(sharded)):
        a, b = single.get(rate), sharded.get(rate)

        def pick(cell: dict[str, Any] | None, name: str) -> Any:
            return None if cell is None else cell.get(name)

        def cpu(cell: dict[str, Any] | None, name: str) -> Any:
            return None if cell is None else cell["cpu_pct"].get(name)

        rows.append(
            [
                rate,
                _ms(pick(a, "p50_ms")) if a else None,
                _ms(pick(b, "p50_ms")) if b else None,
                _ms(pick(a, "p99_ms")) if a else None,
                _ms(pick(b, "p99_ms")) if b else None,
                f"{a['delivered_pct']:.1f}%" if a else None,
                f"{b['delivered_pct']:.1f}%" if b else None,
                pick(a, "relay_cpu_us_per_message"),
                pick(b, "relay_cpu_us_per_message"),
                cpu(a, "redis-server"),
                cpu(b, "redis-server"),
                ("pass" if a["passed"] else "FAIL") if a else None,
                ("pass" if b["passed"] else "FAIL") if b else None,
            ]
        )
    out.append(
        table(
            [
                "events/s",
                "p50 ms single",
                "p50 ms cluster",
                "p99 ms single",
                "p99 ms cluster",
                "delivered single",
                "delivered cluster",
                "relay CPU µs/message single",
                "relay CPU µs/message cluster",
                "Redis CPU % single",
                "Redis CPU % cluster",
                "single",
                "cluster",
            ],
            rows,
        )
    )
    out.append("\n\n")
    return "".join(out)


def _relay_cost(f: dict[str, Any]) -> float | None:
    passing = [s for s in f["relays"]["1"]["steps"] if s["passed"] and s.get("relay_cpu_us_per_message")]
    return float(passing[-1]["relay_cpu_us_per_message"]) if passing else None


def memory(m: dict[str, Any]) -> str:
    idle = m["idle"]
    rows = []
    for system in ("agentwatch", "baseline", "naive"):
        if system not in idle:
            continue
        d = idle[system]
        label = f"baseline ({idle.get('baseline_rev')})" if system == "baseline" else system
        rows.append([label, _kib(d["rss_kib_0"]), _kib(d["rss_kib_n"]), d["connected"], d["kib_per_viewer"]])
    out = [
        f"Relay RSS with no viewer (after one viewer came and went) and with {idle['viewers']} idle viewers "
        "connected (no traffic):\n\n",
        table(["relay", "RSS, 0 viewers", f"RSS, {idle['viewers']} viewers", "connected", "KiB per viewer"], rows),
    ]
    load = m["load"]
    rows = []
    for system in ("agentwatch", "naive"):
        d = load[system]
        rows.append(
            [
                system,
                _kib(d["rest_kib"]["ingest"]),
                _kib(d["load_kib"]["ingest"]),
                _kib(d["rest_kib"]["relay"]),
                _kib(d["load_kib"]["relay"]),
                d["p99_ms"],
            ]
        )
    out.append(f"\n\nAt rest and at the end of {load['rate']:,} events/s to {load['viewers']} viewers for 5 s:\n\n")
    out.append(
        table(["system", "ingest at rest", "ingest under load", "relay at rest", "relay under load", "p99 ms"], rows)
    )
    stall = m["stall"]
    rows = []
    for system in ("agentwatch", "naive"):
        d = stall[system]
        rows.append(
            [
                system,
                _kib(d["rss_growth_kib"]),
                d["stalled_closed_after_s"] if d["stalled_closed_after_s"] is not None else "never",
                d["stalled_socket"],
                d["healthy_p50_ms"],
                d["healthy_p99_ms"],
            ]
        )
    out.append(
        f"\n\nA stalled viewer (handshake, then never reads) on each relay, with one healthy viewer beside it; "
        f"{stall['rate']:,} events/s for {stall['seconds']} s, both systems tailing the same file:\n\n"
    )
    out.append(
        table(
            [
                "relay",
                "relay RSS growth",
                "stalled viewer closed after (s)",
                "what the stalled socket holds at the end",
                "healthy viewer p50 ms",
                "healthy viewer p99 ms",
            ],
            rows,
        )
    )
    rows = [
        [
            t["t"],
            _kib(t["agentwatch_rss_kib"]),
            t["agentwatch_viewers"],
            _kib(t["naive_rss_kib"]),
            t["naive_viewers"],
            t["naive_queued"],
        ]
        for t in stall["timeline"]
    ]
    out.append("\n\nTimeline (relay RSS and viewers connected, sampled every second):\n\n")
    out.append(
        table(
            ["t (s)", "agentwatch RSS", "agentwatch viewers", "naive RSS", "naive viewers", "naive events queued"],
            rows,
        )
    )
    return "".join(out)


def naive(r: dict[str, Any]) -> str:
    rows: list[list[Any]] = []
    ingest = r.get("ingest")
    if ingest:
        aw = ingest["results"]["agentwatch ingest"]["lines_per_s"]
        nv = ingest["results"]["naive design (bench/naive.py)"]["lines_per_s"]
        rows.append(["catch-up throughput (lines/s)", aw, nv, f"{aw / nv:.1f}x"])
        idle = ingest["idle"]["cpu_pct"]
        rows.append(["ingest idle CPU (% of a core)", idle["agentwatch ingest"], idle["naive ingest"], ""])
    latency = r.get("latency")
    if latency:
        for c in latency["cells"]:
            if c["system"] != "agentwatch":
                continue
            other = _cell_at(latency, "naive", c["rate"], c["viewers"])
            if other is None:
                continue
            label = f"p50 / p99 ms at {c['rate']:,} events/s, {c['viewers']} viewers"
            times = other["p50_ms"] / c["p50_ms"] if c["p50_ms"] else math.nan
            rows.append(
                [
                    label,
                    f"{_ms(c['p50_ms'])} / {_ms(c['p99_ms'])}",
                    f"{_ms(other['p50_ms'])} / {_ms(other['p99_ms'])}",
                    "–"
                    if math.isnan(times)
                    else f"p50 {times:.1f}x lower"
                    if times >= 1
                    else f"p50 {1 / times:.1f}x higher",
                ]
            )
    memory = r.get("memory")
    if memory:
        stall = memory["stall"]
        aw, nv = stall["agentwatch"], stall["naive"]
        rows.append(
            [
                f"relay RSS growth, 1 stalled viewer, {stall['seconds']} s",
                _kib(aw["rss_growth_kib"]),
                _kib(nv["rss_growth_kib"]),
                "",
            ]
        )
        rows.append(
            [
                "stalled viewer",
                f"closed after {aw['stalled_closed_after_s']} s"
                if aw["stalled_closed_after_s"] is not None
                else "not closed",
                "never closed" if nv["viewers_at_end"] >= 2 else "closed",
                "",
            ]
        )
    return (
        "The naive model is bench/naive.py: ingest polls every 200 ms and makes one Redis round trip per line; "
        "the relay gives each viewer an unbounded queue and no slow-viewer policy. Same Normalizer, same server "
        "stack. All figures below are from the sections above, i.e. this run.\n\n"
        + table(["", "agentwatch", "naive design", "agentwatch vs naive"], rows)
    )


def page(p: dict[str, Any]) -> str:
    if "skipped" in p:
        return f"Skipped: {p['skipped']}.\n\n" + table(["figure", "value"], [["skipped", p["skipped"]]])
    plan = p["plan"]
    # The second cell: the same load with the panels open (bench/page.py _panels); absent in older results.
    q = p.get("panels") or {}
    # The third column: the graph-only cell on the baseline's relay and page (bench/page.py _baseline).
    b = p.get("baseline") or {}
    b_figures = {k: v for k, v in b.items() if k not in ("rev", "failed", "skipped")}

    def three(key: str, fmt: Any = lambda v: v) -> list[Any]:
        return [fmt(d[key]) if key in d else None for d in (p, q, b_figures)]

    def per_second(v: list[int]) -> str:
        return ", ".join(str(x) for x in v)

    open_panels = [name for name, on in (("inspector", q.get("inspector_open")), ("feed", q.get("feed_open"))) if on]
    rows = [
        ["alive agents on the page", *three("alive")],
        ["events/s offered / applied by the page", *three("events_per_s_applied", lambda v: f"{plan['rate']} / {v}")],
        ["frames per second, mean over the window", *three("fps_mean")],
        ["frames per second, each second", *three("fps_per_second", per_second)],
        ["browser CPU per frame, ms (all Chromium processes)", *three("cpu_ms_per_frame")],
        ["browser CPU, cores busy", *three("cpu_cores_busy")],
        ["panels open", "none", ", ".join(open_panels) or "none" if q else None, "none" if b_figures else None],
        [
            "tool satellites drawn",
            0,
            f"{q['satellites']} ({q['tools_per_agent']} per agent)" if "satellites" in q else None,
            0 if b_figures else None,
        ],
        ["append -> pulse started, median ms", p["pulse_ms_median"], None, None],
        ["append -> pulse started, p90 ms", p["pulse_ms_p90"], None, None],
        ["append -> pulse started, max ms", p["pulse_ms_max"], None, None],
        ["page errors", len(p["page_errors"]), len(q["page_errors"]) if "page_errors" in q else None, None],
    ]
    why_not = b.get("failed") or b.get("skipped")
    baseline_note = (
        f" The third column is the graph-only cell again on the baseline's relay and page ({b.get('rev')}), "
        "in the same run."
        if b_figures
        else f" No baseline column: {why_not}."
        if why_not
        else ""
    )
    return (
        f"Headless Chromium (`--headless --no-sandbox --disable-gpu`), 1280x720, against the real stack. "
        f"{plan['agents'] + 1} agents alive (one orchestrator), {plan['rate']} PreToolUse lines/s for "
        f"{plan['seconds']} s; fps from requestAnimationFrame (capped by the display rate, 60). Then "
        f"{plan['probes']} probes, one at a time: a line appended to the file -> the pulse started in a frame "
        "(window.agentwatch.stats.lastPulse.at, Date.now(), same clock). Browser CPU is the CPU time of every "
        "Chromium process (CDP SystemInfo.getProcessInfo) over the window, per frame and as cores kept busy: on a "
        "shared machine it moves far less than the frame rate does. The second column is the same load in the "
        "same run on a fresh page with its panels open: the inspector on one agent (opened by a click), the "
        "activity feed, and tool satellites, each agent having used 8 tools, all 8 called by the load."
        + baseline_note
        + "\n\n"
        + table(
            ["figure", "graph only", "panels open, tool satellites on", f"graph only, {b.get('rev') or 'baseline'}"],
            rows,
        )
    )


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
