"""docs/performance.md, sections 5 to 7: memory, the naive design side by side, the page."""

from __future__ import annotations

import math
from typing import Any

from bench import goals
from bench.markdown import kib as _kib
from bench.markdown import ms as _ms
from bench.markdown import table


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
            other = goals.cell_at(latency, "naive", c["rate"], c["viewers"])
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
