"""The capacity section of docs/performance.md: a team of 10, 100 and 1 000 developers, from this run's figures
(bench/capacity.py computes, bench/dev_rate.py measures the developers)."""

from __future__ import annotations

import math
from typing import Any

from bench.markdown import cell, number, table

INPUT_NAMES = {
    "rate_median": ("events/s per developer, median", "events/s"),
    "rate_busy": ("events/s per developer, busy", "events/s"),
    "redis_commands_per_event": ("Redis commands per event", ""),
    "redis_commands_per_event_catch_up": ("Redis commands per event, catching up", ""),
    "redis_us_per_event": ("Redis CPU per event", "µs"),
    "relay_messages_per_s": ("messages/s one relay delivers (p99 <= 100 ms)", "messages/s"),
    "kib_per_viewer": ("relay memory per viewer", "KiB"),
    "relay_rest_kib": ("relay RSS with no viewer", "KiB"),
    "bytes_per_message": ("bytes per message on the WebSocket", "B"),
}


def render(c: dict[str, Any]) -> str:
    dev = c["developers"]
    out = [_developers(dev), "", _inputs(c["inputs"]), ""]
    rows = c["rows"]
    for viewers in sorted({r["viewers"] // r["developers"] for r in rows}):
        out.append(f"**{viewers} viewer{'s' if viewers > 1 else ''} per developer**, every developer busy at once:")
        out.append("")
        out.append(_rows([r for r in rows if r["viewers"] == viewers * r["developers"]]))
        out.append("")
    out.append(_limits(rows, c.get("cores_per_machine")))
    return "\n".join(out).rstrip()


def _developers(dev: dict[str, Any]) -> str:
    if "missing" in dev:
        return f"Developers: {dev['missing']}, so the table has no events/s to scale.\n\n" + table(
            ["figure", "value"], [["hook payloads", dev["missing"]]]
        )
    rows = [
        [
            s["source"],
            s["session"],
            s["lines"],
            s["stamped"],
            s["span_min"],
            s["per_min"],
            s["peak_min"],
        ]
        for s in dev["sessions"]
    ]
    head = (
        f"Events per developer, from the hook payloads of real installs and the fixture session ({dev['folder']}; "
        "bench/dev_rate.py says how): a session's lines over the time between its first and last stamp "
        "(`_received_at` or `logged_at`), and its busiest minute where at least half its lines carry a stamp. "
        f"{len(dev['left_out'])} sessions were left out (no stamps, or under a minute between them). A developer "
        f"runs one session at a time: **median {dev['median_per_min']:.1f} events/min "
        f"({dev['median_per_s']:.3f}/s)**, p90 {dev['p90_per_min']:.1f}/min, busiest minute "
        f"{dev['peak_per_min']:.1f}/min; the table sizes on the busy figure, **{dev['busy_per_min']:.1f}/min "
        f"({dev['busy_per_s']:.3f}/s)**, every developer at once.\n\n"
    )
    return head + table(
        ["source", "session", "lines", "stamped", "minutes", "lines/min", "busiest minute (scaled)"], rows
    )


def _inputs(inputs: dict[str, Any]) -> str:
    rows = []
    for key, (name, unit) in INPUT_NAMES.items():
        figure = inputs.get(key) or {}
        measured = figure.get("value") is not None and figure.get("source")
        rows.append([name, number(figure.get("value"), unit), measured or "not measured in this run"])
    return "The measured figures each row rests on:\n\n" + table(["figure", "this run", "measured in"], rows)


def _rows(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        body.append(
            [
                r["developers"],
                r["viewers"],
                f"{number(r['events_per_s_median'])} / {number(r['events_per_s'])}",
                number(r["redis_commands_per_s"]),
                _pct(r["redis_core"]),
                number(r["messages_per_s"]),
                cell(r["relays"]),
                _mib(r["relay_memory_kib"]),
                _mbit(r["network_bytes_per_s"]),
                _first(r),
                r["carried_by"],
            ]
        )
    return table(
        [
            "developers",
            "viewers",
            "events/s (median / busy)",
            "Redis commands/s",
            "Redis core busy",
            "messages/s to viewers",
            "relay processes",
            "relay memory",
            "network out of the relays",
            "first limit it meets",
            "carried by",
        ],
        body,
    )


def _first(r: dict[str, Any]) -> str:
    if not r["first_limit"]:
        return "–"
    at = r["first_limit_at"]
    if at <= r["developers"]:
        return f"{r['first_limit']}: passed at about {at:,.0f} developers"
    return f"{r['first_limit']}, at about {at:,.0f} developers"


def _limits(rows: list[dict[str, Any]], cores: int | None) -> str:
    redis_at = next((at for r in rows for name, at in r["limits"].items() if name.startswith("one Redis core")), None)
    fanout_at = sorted({round(at) for r in rows for name, at in r["limits"].items() if name.startswith("pub/sub")})
    redis = f"reached at about {redis_at:,.0f} developers with this run's figures" if redis_at else "not measured here"
    fanout = (
        " and ".join(f"{at:,} developers" for at in fanout_at) + " (by viewers per developer)"
        if fanout_at
        else "a size this run did not measure"
    )
    return (
        "How the limits fall. Events grow with the team (D developers x r), and Redis commits and publishes each "
        f"once: **one Redis core** is {redis}. On a Redis Cluster it stays the limit, because all of a prefix's "
        "keys share one hash slot (its `{prefix}` hash tag) and one shard carries the whole team: a Cluster "
        "spreads several teams (prefixes), not one. What grows with the square of the team is the **fan-out**: "
        f"every event goes to every viewer, D r x D V messages/s, which passes one relay's capacity at {fanout}. "
        "Relays scale out: they are stateless (each subscribes to the prefix's channel and keeps its own viewers), "
        "so N of them behind a load balancer carry N times the messages, each costing Redis one more pub/sub "
        "subscriber. Network out of the relays grows with the messages. Redis Sentinel (or a managed primary with "
        f"a replica) keeps the one Redis available; relay machines are counted at {cores or '–'} cores (one relay "
        "process per core, a parameter)."
    )


def _pct(fraction: float | None) -> str:
    return "–" if fraction is None or math.isnan(fraction) else f"{100 * fraction:.1f}%"


def _mib(kib: float | None) -> str:
    return "–" if kib is None else f"{kib / 1024:,.0f} MiB"


def _mbit(per_s: float | None) -> str:
    return "–" if per_s is None or math.isnan(per_s) else f"{per_s * 8 / 1e6:,.1f} Mbit/s"
