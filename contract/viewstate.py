"""What a viewer holds: alive records, and how each event changes them (README, "Events").

The relay rebuilds the state at any seq of the retained window from the keyframe before it plus the envelopes
after it (replay); `agentwatch up --replay` builds keyframes from an exported file the same way. A live page
applies the same rules in web/model.js; tests check both against `HGETALL {p}:alive`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from . import MAIN_AGENT, VIEW_FIELDS, alive_field

COUNTERS = ("tools", "tool_count", "prompts", "agents_total")  # in records; viewers count on from the events
IDS = ("session_id", "agent_id")


class ViewState:
    """Alive records by field "<session_id>/<agent_id>": ids, view fields and counters."""

    def __init__(self, records: Iterable[Mapping[str, Any]] = ()) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        for record in records:
            self.records[alive_field(str(record["session_id"]), str(record["agent_id"]))] = _kept(record)

    @classmethod
    def from_alive(cls, alive: Mapping[str, Any]) -> ViewState:
        """From a keyframe's or a snapshot's alive object (values are records, or their JSON text)."""
        return cls(json.loads(v) if isinstance(v, str | bytes) else v for v in alive.values())

    def apply(self, event: Mapping[str, Any]) -> None:
        kind, session, agent = event.get("type"), str(event.get("session_id")), str(event.get("agent_id"))
        key, main = alive_field(session, agent), alive_field(session, MAIN_AGENT)
        if kind in ("session_start", "agent_spawn"):
            self.records[key] = _kept(event)
            if kind == "agent_spawn" and main in self.records:
                self.records[main]["agents_total"] += 1
        elif kind == "agent_update":
            previous = event.get("previous_id")
            if previous is not None:
                old = self.records.pop(alive_field(session, str(previous)), None)
                self.records[key] = {**(old or _kept(event)), "agent_id": agent}
            record = self.records.get(key)
            if record is not None:
                record.update({f: event[f] for f in VIEW_FIELDS if f in event})
        elif kind == "agent_done":
            self.records.pop(key, None)
            if event.get("merged_into") and main in self.records:
                self.records[main]["agents_total"] -= 1
        elif kind == "session_end":
            for other in [k for k, r in self.records.items() if r["session_id"] == session]:
                del self.records[other]
        elif kind in ("tool_use", "skill_use") and key in self.records:
            record = self.records[key]
            tool = str(event.get("tool") or "tool")
            record["tools"] = {**record["tools"], tool: record["tools"].get(tool, 0) + 1}
            record["tool_count"] += 1
        elif kind == "prompt" and main in self.records:
            self.records[main]["prompts"] += 1

    def alive(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self.records.items()}


def _kept(record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {name: record.get(name) for name in (*IDS, *VIEW_FIELDS)}
    out["tools"] = dict(record.get("tools") or {})
    for name in ("tool_count", "prompts", "agents_total"):
        value = record.get(name)
        out[name] = value if isinstance(value, int) else 0
    for name in ("spawned_at", "last_seen"):
        if name in record:
            out[name] = record[name]
    if "spawned_at" not in out and isinstance(record.get("ts"), int):
        out["spawned_at"] = record["ts"]  # an event's time is the record's start
    return out
