"""What a viewer holds after applying the event stream to a snapshot: the test side of "the stream is the truth".

Written from the README's protocol section only, like any third-party viewer would be, so a change to what
ingest publishes that a viewer cannot follow shows up as a difference with `HGETALL {p}:alive`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from contract import VIEW_FIELDS

VIEW = VIEW_FIELDS  # the alive-record fields every change of which is published (README, "Events")
# Record fields a snapshot carries and viewers count on from the events (README, "Events").
COUNTERS = ("tools", "tool_count", "prompts", "agents_total")


def counters_of(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "tools": dict(record.get("tools") or {}),
        "tool_count": int(record.get("tool_count") or 0),
        "prompts": int(record.get("prompts") or 0),
        "agents_total": int(record.get("agents_total") or 0),
    }


def project(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"session_id": record["session_id"], "agent_id": record["agent_id"], **{f: record.get(f) for f in VIEW}}


class Mirror:
    def __init__(self, alive: Iterable[Mapping[str, Any]] = ()) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.renamed: dict[tuple[str, str], str] = {}  # (session, stand-in id) -> the id it became
        self.problems: list[str] = []  # events a viewer could not apply as the protocol says
        self.counters: dict[str, dict[str, Any]] = {}
        for record in alive:
            key = f"{record['session_id']}/{record['agent_id']}"
            self.records[key] = project(record)
            self.counters[key] = counters_of(record)

    @classmethod
    def from_hash(cls, raw: Mapping[Any, Any]) -> Mirror:
        return cls(json.loads(v) for v in raw.values())

    def final_id(self, session: str, agent_id: str) -> str:
        seen = set()
        while (session, agent_id) in self.renamed and agent_id not in seen:
            seen.add(agent_id)
            agent_id = self.renamed[(session, agent_id)]
        return agent_id

    def apply(self, event: Mapping[str, Any]) -> None:
        self._count(event)
        kind, session, agent = event["type"], event["session_id"], event["agent_id"]
        key = f"{session}/{agent}"
        if kind in ("session_start", "agent_spawn"):
            if key in self.records:
                self.problems.append(f"{kind} for {key}, which is already alive")
            self.records[key] = project(event)
        elif kind == "agent_update":
            previous = event.get("previous_id")
            if previous is not None:
                old = self.records.pop(f"{session}/{previous}", None)
                if old is None:
                    self.problems.append(f"re-key of {session}/{previous}, which is not alive")
                if key in self.records:
                    self.problems.append(f"re-key onto {key}, which is already alive")
                self.renamed[(session, previous)] = agent
                self.records[key] = {**(old or project(event)), "agent_id": agent}
                self.counters[key] = self.counters.pop(f"{session}/{previous}", counters_of({}))
            elif key not in self.records:
                self.problems.append(f"agent_update for {key}, which is not alive")
                return
            self.records[key].update({f: event[f] for f in VIEW if f in event})
        elif kind == "agent_done":
            self.counters.pop(key, None)
            if self.records.pop(key, None) is None:
                self.problems.append(f"agent_done for {key}, which is not alive")
        elif kind == "session_end":
            for other in [k for k, r in self.records.items() if r["session_id"] == session]:
                del self.records[other]
                self.counters.pop(other, None)
        elif key not in self.records:
            self.problems.append(f"{kind} for {key}, which is not alive")

    def _count(self, event: Mapping[str, Any]) -> None:
        """The counters a snapshot's records carry, counted on from the events as the README says."""
        kind, session = event["type"], event["session_id"]
        key, main = f"{session}/{event['agent_id']}", f"{session}/main"
        if kind in ("session_start", "agent_spawn"):
            self.counters[key] = counters_of({})
        if kind in ("tool_use", "skill_use") and key in self.counters:
            tools = self.counters[key]["tools"]
            tools[event["tool"]] = tools.get(event["tool"], 0) + 1
            self.counters[key]["tool_count"] += 1
        elif kind == "prompt" and main in self.counters:
            self.counters[main]["prompts"] += 1
        elif kind == "agent_spawn" and main in self.counters:
            self.counters[main]["agents_total"] += 1
        elif kind == "agent_done" and event.get("merged_into") and main in self.counters:
            self.counters[main]["agents_total"] -= 1

    def apply_all(self, events: Iterable[Mapping[str, Any]]) -> Mirror:
        for event in events:
            self.apply(event)
        return self


def hash_counters(raw: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    """The counters of HGETALL {p}:alive, as the mirror counts them."""
    return {(k.decode() if isinstance(k, bytes) else str(k)): counters_of(json.loads(v)) for k, v in raw.items()}


def hash_view(raw: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    """HGETALL {p}:alive as the mirror holds it."""
    out = {}
    for k, v in raw.items():
        key = k.decode() if isinstance(k, bytes) else str(k)
        out[key] = project(json.loads(v))
    return out
