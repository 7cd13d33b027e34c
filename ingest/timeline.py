"""What the replay timeline needs from each commit: events per minute, failures, and markers.

Computed here from the events a commit publishes and written by the commit script in the same call, so the
timeline never shows an event the log does not hold (README, "Replay").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contract import compact_json

MARKED = frozenset({"session_start", "session_end", "tool_fail", "stop_fail"})
FAILED_OUTCOMES = frozenset({"failure", "lost"})
MARK_FIELDS = ("type", "ts", "session_id", "agent_id", "outcome", "tool", "reason", "project", "agent_type")


def failed(event: dict[str, Any]) -> bool:
    kind = event.get("type")
    return kind in ("tool_fail", "stop_fail") or (kind == "agent_done" and event.get("outcome") in FAILED_OUTCOMES)


@dataclass
class Timeline:
    """One commit's share: marks as (index of the event in the commit, JSON) and per-minute counters."""

    marks: list[tuple[int, str]] = field(default_factory=list)
    minutes: dict[str, int] = field(default_factory=dict)

    def add(self, index: int, event: dict[str, Any]) -> None:
        ts = event.get("ts")
        minute = ts // 60_000 if isinstance(ts, int) else 0
        self._count(f"{minute}:e")
        bad = failed(event)
        if bad:
            self._count(f"{minute}:f")
        if bad or event.get("type") in MARKED:
            self.marks.append((index, compact_json({k: event[k] for k in MARK_FIELDS if event.get(k) is not None})))

    def _count(self, name: str) -> None:
        self.minutes[name] = self.minutes.get(name, 0) + 1

    def extend(self, events: list[dict[str, Any]], start: int = 0) -> None:
        for i, event in enumerate(events, start):
            self.add(i, event)
