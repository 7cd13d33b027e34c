"""The replay section of docs/performance.md (bench/replay_bench.py's figures)."""

from __future__ import annotations

from typing import Any


def render(r: dict[str, Any], table: Any) -> str:
    m, day, build, one = r["measured"], r["day"], r["build"], r["one_replay"]
    out = [
        f"Measured on what the real ingest committed ({m['envelopes']:,} envelopes, {m['keyframes']} keyframes of "
        f"{m['agents_per_keyframe']} agents): **{m['bytes_per_envelope']} bytes per envelope** and "
        f"{m['bytes_per_keyframe']:,} bytes per keyframe in Redis (MEMORY USAGE), about {m['json_bytes_per_record']} "
        "bytes of JSON per alive record. Memory per hour of retained window, from those figures (a keyframe a "
        "minute, or one per 2 000 envelopes when that is more often):",
        "",
        table(
            ["events/s", "alive agents", "keyframes/h", "MiB per hour", "MiB for 24 h"],
            [
                [h["rate"], h["agents"], h["keyframes"], h["mib_per_hour"], round(h["mib_per_hour"] * 24)]
                for h in r["per_hour"]
            ],
        ),
        "",
        f"A {day['envelopes']:,}-envelope log (24 h at 10 events/s) with a {200}-agent keyframe every 2 000 envelopes "
        f"takes **{day['mib']} MiB** (measured). The state at a point of it, built as the relay builds it (the "
        f"keyframe before it plus up to 1 999 envelopes), over {build['points']} points (half of them the worst, "
        "just before a keyframe):",
        "",
        table(
            ["median", "p99", "max"], [[f"{build['median_ms']} ms", f"{build['p99_ms']} ms", f"{build['max_ms']} ms"]]
        ),
        "",
        f"One replay viewer at `speed=max` through a real relay on that log: **{one['per_s']:,} envelopes/s** "
        f"({one['envelopes']:,} envelopes); CPU meanwhile: "
        + ", ".join(f"{name} {pct}%" for name, pct in one["cpu_pct"].items())
        + " of one core. Its reads are bounded (500 envelopes at a time) and it never joins the live fan-out.",
    ]
    return "\n".join(out)
