"""docs/performance.md from the figures of one run: every table here is generated, none is typed by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench import hook_bench, replay_report

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
}


def table(headers: list[str], rows: list[list[Any]]) -> str:
    align = ["---" if i == 0 else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _ms(value: float) -> str:
    """A latency; nan means no event of the window arrived before the cell ended (a backlog of seconds)."""
    return "saturated" if isinstance(value, float) and math.isnan(value) else _cell(value)


def _yes(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**missed**")


def _kib(value: float | None) -> str:
    return "–" if value is None else f"{value / 1024:,.1f} MiB"


# ---- sections


def goals(r: dict[str, Any]) -> str:
    rows: list[list[Any]] = []
    hook = r.get("hook")
    if hook:
        small = hook["results"]["1 KiB"]
        aw, bare = small["agentwatch hook (sh)"], small["bare `sh -c :`"]
        ratio = aw["median_ms"] / bare["median_ms"]
        rows.append(["hook median <= 5 ms", f"{aw['median_ms']:.2f} ms (1 KiB)", _yes(aw["median_ms"] <= 5)])
        rows.append(["hook within 3x of a bare `sh -c :`", f"{ratio:.2f}x", _yes(ratio <= 3)])
    ingest = r.get("ingest")
    if ingest:
        aw = ingest["results"]["agentwatch ingest"]
        rows.append(["ingest >= 50 000 lines/s", f"{aw['lines_per_s']:,} lines/s", _yes(aw["lines_per_s"] >= 50_000)])
        rows.append(
            [
                "ingest >= half of raw pipelined XADD",
                f"{aw['vs_raw_pipelined']:.0%}",
                _yes(aw["vs_raw_pipelined"] >= 0.5),
            ]
        )
        idle = ingest["idle"]["cpu_pct"]["agentwatch ingest"]
        rows.append(["ingest idle CPU about zero", f"{idle:.2f}% of a core", _yes(idle < 1.0)])
        tx = ingest.get("transcripts")
        if tx:
            rows.append(
                [
                    f"transcript following adds <= 10% ingest CPU at {tx['rate']:,} events/s",
                    f"{tx['overhead']:+.0%} ({tx['cpu_pct_without']}% -> {tx['cpu_pct_with']}% of a core)",
                    _yes(tx["overhead"] <= 0.10),
                ]
            )
    latency = r.get("latency")
    if latency:
        cell = _cell_at(latency, "agentwatch", 1000, 100)
        if cell:
            rows.append(
                ["p50 < 5 ms at 1 000 events/s, 100 viewers", f"{cell['p50_ms']:.1f} ms", _yes(cell["p50_ms"] < 5)]
            )
            rows.append(
                ["p99 < 25 ms at 1 000 events/s, 100 viewers", f"{cell['p99_ms']:.1f} ms", _yes(cell["p99_ms"] < 25)]
            )
    fanout = r.get("fanout")
    if fanout:
        one = fanout["relays"]["1"]
        note = " (every step passed: the ceiling is higher)" if one["all_passed"] else ""
        cost = _relay_cost(fanout)
        if cost:
            note += f"; {cost:.1f} µs of relay CPU per message = {1e6 / cost:,.0f}/s on a core of its own"
        rows.append(
            [
                ">= 50 000 messages/s per relay process",
                f"{one['max_messages_per_s']:,} messages/s{note}",
                _yes(one["max_messages_per_s"] >= 50_000),
            ]
        )
    memory = r.get("memory")
    if memory:
        per = memory["idle"]["agentwatch"]["kib_per_viewer"]
        rows.append(["<= 40 KiB per idle viewer", f"{per} KiB", _yes(per is not None and per <= 40)])
    return table(["goal", "measured in this run", ""], rows)


def _cell_at(latency: dict[str, Any], system: str, rate: int, viewers: int) -> dict[str, Any] | None:
    for cell in latency["cells"]:
        if cell["system"] == system and cell["rate"] == rate and cell["viewers"] == viewers:
            return cell  # type: ignore[no-any-return]
    return None


def hook(h: dict[str, Any]) -> str:
    return hook_bench.table(h)


def ingest(i: dict[str, Any]) -> str:
    rows = []
    for name, f in i["results"].items():
        rows.append(
            [
                name,
                f["lines_per_s"],
                f["seconds"],
                f["cpu_us_per_line"],
                f"{f['vs_raw_pipelined']:.0%}",
                f"{f['vs_per_line']:.2f}x",
                f"{f['vs_naive']:.1f}x",
                ", ".join(f"{x:,}" for x in f["runs"]),
            ]
        )
    head = (
        f"{i['measured_lines']:,} PreToolUse lines (median {i['line_bytes_median']} bytes) after "
        f"{i['lines'] - i['measured_lines']} set-up lines, 3 sessions x 4 agents; median of {i['reps']} runs, "
        "variants in rotating order, all into the same redis-server. The Pre/Post row is the same number of "
        "lines as PreToolUse/PostToolUse pairs (every call closed, as in real sessions).\n\n"
    )
    main = table(
        [
            "variant",
            "lines/s",
            "seconds",
            "CPU µs/line (the variant's own process)",
            "vs raw pipelined",
            "vs per-line",
            "vs naive",
            "runs (lines/s)",
        ],
        rows,
    )
    idle = i["idle"]
    idle_rows = [[name, f"{pct:.2f}%"] for name, pct in idle["cpu_pct"].items()]
    idle_text = (
        f"\n\nIdle CPU: no new lines for {idle['seconds']:.0f} s, utime+stime from /proc/<pid>/stat, all four "
        f"processes in the same window (ingest's watch_step_ms = {idle['watch_step_ms']}).\n\n"
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


def latency(lat: dict[str, Any]) -> str:
    plan = lat["plan"]
    head = (
        f"Open loop: the appender (own process) writes line j at t0 + j/rate; latency = receipt at the viewer "
        f"(time.time_ns) minus the time the line was due, for every event in the window after a warm-up, "
        f"{plan['duration']:.0f} s per cell. Viewers: the websockets client in one process. CPU: % of one core over "
        "the cell (2 cores in all, shared with the load generator and the viewers). `delivered` = measured events "
        "received by the end of the cell / (lines in the window x viewers); `closed` = viewers the relay closed "
        "(code: count).\n\n"
    )
    out = [head]
    for system in ("agentwatch", "naive"):
        rows = []
        for c in lat["cells"]:
            if c["system"] != system:
                continue
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
                    c.get("relay_cpu_us_per_message"),
                    f"{cpu.get('relay', 0):.0f} / {cpu.get('ingest', 0):.0f} / {cpu.get('redis-server', 0):.0f} / "
                    f"{cpu.get('viewers', 0):.0f}",
                    c["appender"]["late_ms_p99"],
                ]
            )
        if rows:
            label = "agentwatch" if system == "agentwatch" else "naive design (bench/naive.py)"
            out.append(f"**{label}**\n\n")
            out.append(
                table(
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
                        "relay CPU µs/message",
                        "CPU % relay / ingest / redis / viewers",
                        "appender late p99 ms",
                    ],
                    rows,
                )
            )
            out.append("\n\n")
    return "".join(out).rstrip()


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


def _closed(closed: dict[str, int]) -> str:
    return ", ".join(f"{code}: {n}" for code, n in sorted(closed.items())) or "0"


def fanout(f: dict[str, Any]) -> str:
    plan = f["plan"]
    out = [
        f"{plan['viewers']} viewers (raw client, one process), event rate stepped up, {plan['duration']:.0f} s per "
        f"step; a step passes with p99 <= {f['p99_limit_ms']:.0f} ms, >= 99% delivered and no viewer closed. "
        "With two relays the viewers are split evenly between them. `relay CPU µs/message` = the relays' CPU "
        "seconds over the step / messages the viewers received: 1e6 / it is what one relay process could deliver "
        "with a whole core to itself.\n\n"
    ]
    summary = []
    for relays, data in f["relays"].items():
        summary.append(
            [
                relays,
                data["max_messages_per_s"],
                data["max_per_relay"],
                "yes" if data["all_passed"] else "no",
            ]
        )
    out.append(
        table(["relay processes", "max messages/s (passing step)", "per relay process", "every step passed"], summary)
    )
    out.append(f"\n\nTwo relays / one relay: **{f['scaling']}x**.")
    cost = _relay_cost(f)
    if cost:
        out.append(
            f" One relay's CPU per message at its last passing step: {cost:.1f} µs, i.e. about "
            f"{1e6 / cost:,.0f} messages/s for a relay with a core of its own."
        )
    out.append("\n\n")
    for relays, data in f["relays"].items():
        rows = []
        for s in data["steps"]:
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
                    relay_cpu,
                    s.get("relay_cpu_us_per_message"),
                    f"{cpu.get('viewers', 0):.0f}",
                    "pass" if s["passed"] else "FAIL",
                ]
            )
        out.append(f"**{relays} relay process{'es' if relays != '1' else ''}**\n\n")
        out.append(
            table(
                [
                    "events/s",
                    "messages/s",
                    "p50 ms",
                    "p99 ms",
                    "delivered",
                    "closed",
                    "relay CPU %",
                    "relay CPU µs/message",
                    "viewers CPU %",
                    "",
                ],
                rows,
            )
        )
        out.append("\n\n")
    if "cluster" in f:
        out.append(_cluster_beside_single(f))
    return "".join(out).rstrip()


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
    for system in ("agentwatch", "naive"):
        d = idle[system]
        rows.append([system, _kib(d["rss_kib_0"]), _kib(d["rss_kib_n"]), d["connected"], d["kib_per_viewer"]])
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
            ratio = other["p50_ms"] / c["p50_ms"]
            rows.append(
                [
                    label,
                    f"{_ms(c['p50_ms'])} / {_ms(c['p99_ms'])}",
                    f"{_ms(other['p50_ms'])} / {_ms(other['p99_ms'])}",
                    "–"
                    if math.isnan(ratio)
                    else f"p50 {ratio:.1f}x lower"
                    if ratio >= 1
                    else f"p50 {1 / ratio:.1f}x higher",
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

    def both(key: str, fmt: Any = lambda v: v) -> list[Any]:
        return [fmt(p[key]) if key in p else None, fmt(q[key]) if key in q else None]

    def per_second(v: list[int]) -> str:
        return ", ".join(str(x) for x in v)

    open_panels = [name for name, on in (("inspector", q.get("inspector_open")), ("feed", q.get("feed_open"))) if on]
    rows = [
        ["alive agents on the page", *both("alive")],
        ["events/s offered / applied by the page", *both("events_per_s_applied", lambda v: f"{plan['rate']} / {v}")],
        ["frames per second, mean over the window", *both("fps_mean")],
        ["frames per second, each second", *both("fps_per_second", per_second)],
        ["browser CPU per frame, ms (all Chromium processes)", *both("cpu_ms_per_frame")],
        ["browser CPU, cores busy", *both("cpu_cores_busy")],
        ["panels open", "none", ", ".join(open_panels) or "none" if q else None],
        [
            "tool satellites drawn",
            0,
            f"{q['satellites']} ({q['tools_per_agent']} per agent)" if "satellites" in q else None,
        ],
        ["append -> pulse started, median ms", p["pulse_ms_median"], None],
        ["append -> pulse started, p90 ms", p["pulse_ms_p90"], None],
        ["append -> pulse started, max ms", p["pulse_ms_max"], None],
        ["page errors", len(p["page_errors"]), len(q["page_errors"]) if "page_errors" in q else None],
    ]
    return (
        f"Headless Chromium (`--headless --no-sandbox --disable-gpu`), 1280x720, against the real stack. "
        f"{plan['agents'] + 1} agents alive (one orchestrator), {plan['rate']} PreToolUse lines/s for "
        f"{plan['seconds']} s; fps from requestAnimationFrame (capped by the display rate, 60). Then "
        f"{plan['probes']} probes, one at a time: a line appended to the file -> the pulse started in a frame "
        "(window.agentwatch.stats.lastPulse.at, Date.now(), same clock). Browser CPU is the CPU time of every "
        "Chromium process (CDP SystemInfo.getProcessInfo) over the window, per frame and as cores kept busy: on a "
        "shared machine it moves far less than the frame rate does. The second column is the same load in the "
        "same run on a fresh page with its panels open: the inspector on one agent (opened by a click), the "
        "activity feed, and tool satellites, each agent having used 8 tools, all 8 called by the load.\n\n"
        + table(["figure", "graph only", "panels open, tool satellites on"], rows)
    )


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
    renderers = {
        "goals": lambda: goals(r),
        "hook": lambda: hook(r["hook"]),
        "ingest": lambda: ingest(r["ingest"]),
        "latency": lambda: latency(r["latency"]) + (watch_step(r["watch_step"]) if "watch_step" in r else ""),
        "fanout": lambda: fanout(r["fanout"]),
        "memory": lambda: memory(r["memory"]),
        "naive": lambda: naive(r),
        "page": lambda: page(r["page"]),
        "replay": lambda: replay_report.render(r["replay"], table),
    }
    for key, title in SECTIONS.items():
        out.append(f"## {title}")
        out.append("")
        if key in ("goals", "naive") or key in r:
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
