"""docs/performance.md, sections 3 and 4: latency end to end and fan-out, with the baseline beside."""

from __future__ import annotations

from typing import Any

from bench import goals
from bench.markdown import closed as _closed
from bench.markdown import ms as _ms
from bench.markdown import ratio, table

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
        new = goals.cell_at(lat, "agentwatch", old["rate"], old["viewers"])
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
