"""Hook lines per developer, measured on real installs: what the capacity table multiplies by the team's size.

The sources are the real hook payloads in ../shared/fixtures/real/ (six public repositories; their SOURCES.md
says how each was captured) and the fixture session (claude-code-session.jsonl). A session is timed by the
stamps its lines carry: `_received_at` (agentwatch's hook: epoch ms, or ISO in the fixture), `logged_at` (the
logging hooks of several sources, ISO local time) or `timestamp`. Many lines carry none, and most sources are
logs concatenated by event type (not in time order), so a session's rate is all of its lines over the time
between its first and last stamp: lines outside that span make it higher, never lower, which errs on the side
of a bigger team load. Sessions spanning under a minute are left out (a few stamps seconds apart say nothing of
a rate). A session's peak minute (the most stamped lines in any 60 s) is read where at least half its lines
carry a stamp, scaled up to all of its lines.

One developer runs one session at a time (sub-agents are inside it), and a line gives about one event.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, percentile

FIXTURES = ROOT.parent / "shared" / "fixtures"
SESSION_FIXTURE = "claude-code-session.jsonl"
STAMPS = ("_received_at", "logged_at", "timestamp")
MIN_SPAN_S = 60.0
DENSE = 0.5  # the share of a session's lines that must carry a stamp for its peak minute to be read


@dataclass(frozen=True)
class SessionRate:
    source: str
    session: str
    lines: int
    stamped: int
    span_min: float
    per_min: float  # lines per active minute
    peak_min: float | None  # lines in the busiest minute, scaled to all lines; None: too few stamps


def stamp(payload: dict[str, Any]) -> float | None:
    """A payload's time in seconds since the epoch, from whichever stamp it carries; None without one."""
    for key in STAMPS:
        value = payload.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            return value / 1000 if value > 1e11 else float(value)  # epoch ms (the hook's) or seconds
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                continue
            if moment.tzinfo is None:  # a logging hook's local time: only differences within a session matter
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    return None


def peak_minute(stamps: list[float]) -> int:
    """The most stamps in any 60 s window."""
    ordered = sorted(stamps)
    best, first = 0, 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= 60.0:
            first += 1
        best = max(best, last - first + 1)
    return best


def session_rates(source: str, payloads: list[dict[str, Any]]) -> tuple[list[SessionRate], list[str]]:
    """Each timed session of one source's payloads, and a line for each session left out, saying why."""
    sessions: dict[str, list[dict[str, Any]]] = {}
    for payload in payloads:
        sessions.setdefault(str(payload.get("session_id") or "?"), []).append(payload)
    rates, left_out = [], []
    for session, lines in sessions.items():
        stamps = [t for t in map(stamp, lines) if t is not None]
        span = max(stamps) - min(stamps) if len(stamps) >= 2 else 0.0
        if span < MIN_SPAN_S:
            left_out.append(
                f"{source} {session[:8]}: {len(lines)} lines, {len(stamps)} stamped over {span:.0f} s "
                f"(under {MIN_SPAN_S:.0f} s: no rate)"
            )
            continue
        peak = None
        if len(stamps) >= DENSE * len(lines):
            peak = round(peak_minute(stamps) * len(lines) / len(stamps), 1)
        rates.append(
            SessionRate(
                source=source,
                session=session[:8],
                lines=len(lines),
                stamped=len(stamps),
                span_min=round(span / 60, 1),
                per_min=round(len(lines) / (span / 60), 2),
                peak_min=peak,
            )
        )
    return rates, left_out


def summarize(rates: list[SessionRate], left_out: list[str]) -> dict[str, Any]:
    """A developer's median and busy rate: the median session's lines per active minute, and the busier of
    the sessions' p90 and the highest peak minute measured. Per second too, which is what the table scales."""
    per_min = [r.per_min for r in rates]
    peaks = [r.peak_min for r in rates if r.peak_min is not None]
    median = percentile(per_min, 50) if per_min else math.nan
    p90 = percentile(per_min, 90) if per_min else math.nan
    peak = max(peaks, default=math.nan)
    busy = max((v for v in (p90, peak) if not math.isnan(v)), default=math.nan)
    return {
        "sessions": [asdict(r) for r in rates],
        "left_out": left_out,
        "median_per_min": median,
        "p90_per_min": p90,
        "peak_per_min": peak,
        "busy_per_min": busy,
        "median_per_s": median / 60,
        "busy_per_s": busy / 60,
    }


def measure(folder: Path = FIXTURES) -> dict[str, Any]:
    """Read every source under folder/real and the fixture session; {"missing": why} when there are none."""
    files = sorted((folder / "real").glob("*.jsonl")) if (folder / "real").is_dir() else []
    fixture = folder / SESSION_FIXTURE
    if not fixture.exists():
        fixture = ROOT / "tests" / "data" / SESSION_FIXTURE  # the same file, kept beside the tests
    files += [fixture] if fixture.exists() else []
    if not files:
        return {"missing": f"no hook payloads under {folder} (real/*.jsonl, {SESSION_FIXTURE})"}
    rates: list[SessionRate] = []
    left_out: list[str] = []
    for path in files:
        payloads = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                payload = json.loads(line)
            except ValueError:
                continue
            if isinstance(payload, dict):
                payloads.append(payload)
        found, skipped = session_rates(path.name.removesuffix(".jsonl"), payloads)
        rates += found
        left_out += skipped
    out = summarize(rates, left_out)
    out["folder"] = str(folder)
    out["files"] = [path.name for path in files]
    return out
