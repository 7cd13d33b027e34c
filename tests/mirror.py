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


def project(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"session_id": record["session_id"], "agent_id": record["agent_id"], **{f: record.get(f) for f in VIEW}}


class Mirror:
    def __init__(self, alive: Iterable[Mapping[str, Any]] = ()) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.renamed: dict[tuple[str, str], str] = {}  # (session, stand-in id) -> the id it became
        self.problems: list[str] = []  # events a viewer could not apply as the protocol says
        for record in alive:
            self.records[f"{record['session_id']}/{record['agent_id']}"] = project(record)

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
            elif key not in self.records:
                self.problems.append(f"agent_update for {key}, which is not alive")
                return
            self.records[key].update({f: event[f] for f in VIEW if f in event})
        elif kind == "agent_done":
            if self.records.pop(key, None) is None:
                self.problems.append(f"agent_done for {key}, which is not alive")
        elif kind == "session_end":
            for other in [k for k, r in self.records.items() if r["session_id"] == session]:
                del self.records[other]
        elif key not in self.records:
            self.problems.append(f"{kind} for {key}, which is not alive")

    def apply_all(self, events: Iterable[Mapping[str, Any]]) -> Mirror:
        for event in events:
            self.apply(event)
        return self


def hash_view(raw: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    """HGETALL {p}:alive as the mirror holds it."""
    out = {}
    for k, v in raw.items():
        key = k.decode() if isinstance(k, bytes) else str(k)
        out[key] = project(json.loads(v))
    return out
