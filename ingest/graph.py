"""The normalizer's state and the only ways to change it: add, re-key, update and end agents.

Every change to an alive agent goes through here, so that every change is also published: `agent_spawn`
and `session_start` carry all the view fields, `agent_update` the changed ones (and `previous_id` when a
stand-in id becomes Claude Code's real one), `agent_done` removes the record. The tests apply the stream to
a snapshot after every commit and compare it with the alive hash, field by field.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from contract import MAIN_AGENT, VIEW_FIELDS, alive_field, compact_json

from .agent import NAME_CAP, TEXT_CAP, Agent, Limits
from .pricing import Pricing

Event = dict[str, Any]


class Fields(Protocol):
    def get(self, name: str, default: Any = None, /) -> Any: ...


CALL_FIELD = "call:"  # checkpoint field of one open call
NAMES_CACHED = 4096  # distinct identifiers whose redacted form is remembered


@dataclass
class Ctx:
    """One payload being fed: who sent it and when."""

    payload: Fields  # a decoded line's fields (ingest/payload.py), or a dict
    hook: str
    session: str
    agent_id: str
    ts: int


class OpenCall(NamedTuple):
    """A call between its Pre and its Post. Saved with every commit as a short JSON list."""

    session_id: str
    agent_id: str
    tool: str
    ts: int
    key: str | None  # what it is about (call_key): pairs a PermissionRequest with it


@dataclass
class Graph:
    source: str
    pricing: Pricing
    limits: Limits
    redact: Callable[[str], str]
    details: bool
    agents: dict[str, Agent] = field(default_factory=dict)  # alive_field -> Agent
    open_calls: dict[str, OpenCall] = field(default_factory=dict)  # by tool_use_id
    ended: dict[str, None] = field(default_factory=dict)  # alive fields of agents that ended, oldest first
    ended_dirty: bool = False
    views: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # what viewers were last told, per agent
    touched: set[str] = field(default_factory=set)  # agents changed by the payload being fed
    changed: set[str] = field(default_factory=set)  # alive fields to write in the next commit
    removed: set[str] = field(default_factory=set)  # alive fields to delete in the next commit
    counters: dict[str, int] = field(default_factory=dict)  # stats increments for the next commit
    _names: dict[str, str] = field(default_factory=dict)  # identifier -> its capped, redacted form
    _saved: set[str] = field(default_factory=set)  # open calls the checkpoint in Redis holds
    _stale_fields: list[str] = field(default_factory=list)  # checkpoint fields of older versions, to delete
    # Set by the normalizer when it follows transcripts (ingest/agent_usage.py): an agent ends, a session ends.
    settle: Callable[[Agent, int], None] = lambda agent, ts: None
    forget: Callable[[str], None] = lambda session: None

    # ---- reading
    def get(self, session: str, agent_id: str) -> Agent | None:
        return self.agents.get(alive_field(session, agent_id))

    def main(self, session: str) -> Agent | None:
        return self.agents.get(alive_field(session, MAIN_AGENT))

    def has_ended(self, session: str, agent_id: str) -> bool:
        return alive_field(session, agent_id) in self.ended

    def by_call(self, session: str, tool_use_id: str | None) -> Agent | None:
        """The agent spawned by this PreToolUse(Agent|Task), whatever id it has now."""
        if not tool_use_id:
            return None
        return next((a for a in self.agents.values() if a.tool_use_id == tool_use_id and a.session_id == session), None)

    def unlinked(self, session: str, agent_type: str | None, only_one: bool = False) -> Agent | None:
        """The oldest running spawn of the session whose real id is not known yet, of this type when known.

        An empty agent_type is Claude Code's internal helper: it never takes a spawn. With only_one, an
        unknown type joins only when a single spawn is waiting (nothing to tell several apart)."""
        if agent_type == "":
            return None
        candidates = [
            a
            for a in self.agents.values()
            if a.session_id == session
            and a.provisional
            and a.stopping_since is None
            and (agent_type is None or a.agent_type == agent_type)
        ]
        if not candidates or (only_one and agent_type is None and len(candidates) > 1):
            return None
        return min(candidates, key=lambda a: a.spawned_at)

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    # ---- events
    def event(self, kind: str, ts: int, session: str, agent_id: str, **fields: Any) -> Event:
        return {"type": kind, "ts": ts, "session_id": session, "agent_id": agent_id, **fields}

    def text(self, value: Any, cap: int = TEXT_CAP) -> str | None:
        if not isinstance(value, str) or not value:
            return None
        # Redact before cutting, so a secret straddling the cut is still recognised whole. What is read is cut
        # at a space, so a token cut in half (too short to be recognised) is never part of it.
        head = value[: cap * 4]
        if len(value) > len(head):
            head = head[: max(head.rfind(" "), head.rfind("\n"), 0)]
        return self.redact(head)[:cap]

    def first_line(self, value: Any) -> str | None:
        """What an agent was asked, in one line (redacted): its first non-blank line."""
        if not isinstance(value, str):
            return None
        line = next((part.strip() for part in value.lstrip()[: TEXT_CAP * 4].splitlines() if part.strip()), "")
        return self.text(line)

    def name(self, value: Any) -> str | None:
        """An identifier from a payload (type, model, tool, skill, reason), capped and redacted like any text.
        They repeat, so each distinct one is redacted once."""
        if not isinstance(value, str) or not value:
            return None
        cached = self._names.get(value)
        if cached is None:
            if len(self._names) >= NAMES_CACHED:
                self._names.clear()
            cached = self._names[value] = self.redact(value[: NAME_CAP * 4])[:NAME_CAP]
        return cached

    # ---- changing agents
    def touch(self, agent: Agent, ts: int | None = None) -> None:
        """Note activity or a change viewers do not see (last_seen, tool_count): written, not published."""
        if ts is not None and ts > agent.last_seen:
            agent.last_seen = ts
        self.changed.add(alive_field(agent.session_id, agent.agent_id))

    def mark(self, agent: Agent, ts: int | None = None) -> None:
        """Note a change that may touch the view fields: written, and the changed fields published."""
        self.touch(agent, ts)
        self.touched.add(alive_field(agent.session_id, agent.agent_id))

    def add(self, agent: Agent, kind: str = "agent_spawn") -> Event:
        key = alive_field(agent.session_id, agent.agent_id)
        self.agents[key] = agent
        self.ended.pop(key, None)
        self.removed.discard(key)
        self.changed.add(key)
        self.views[key] = agent.view()
        if kind == "agent_spawn":
            self._count_agent(agent.session_id, 1)
        return self.event(kind, agent.spawned_at, agent.session_id, agent.agent_id, **agent.view_dict())

    def _drop(self, agent: Agent) -> None:
        key = alive_field(agent.session_id, agent.agent_id)
        self.agents.pop(key, None)
        self.views.pop(key, None)
        self.changed.discard(key)
        self.touched.discard(key)
        self.removed.add(key)

    def rekey(self, agent: Agent, new_id: str, ts: int, provisional: bool = False) -> Event:
        """A stand-in id becomes Claude Code's real one: the same node goes on under it."""
        old_id = agent.agent_id
        self._drop(agent)
        agent.agent_id = new_id
        agent.provisional = provisional
        for child in self.agents.values():
            if child.session_id == agent.session_id and child.parent_id == old_id:
                child.parent_id = new_id
                self.mark(child)
        update = self.add(agent, "agent_update")
        update["ts"] = ts
        update["previous_id"] = old_id
        return update

    def _count_agent(self, session: str, n: int) -> None:
        main = self.main(session)
        if main is not None:
            main.agents_total += n
            self.touch(main)

    def done(self, agent: Agent, outcome: str, ts: int, **fields: Any) -> list[Event]:
        if agent.waiting is not None and agent.waiting_since is not None:
            agent.waited_ms += max(0, ts - agent.waiting_since)
        self.settle(agent, ts)  # its last transcript lines, and its figures up to its parent
        if "merged_into" in fields:
            self._count_agent(agent.session_id, -1)  # the same agent as another node: counted once
        self._drop(agent)
        self.ended[alive_field(agent.session_id, agent.agent_id)] = None
        self.ended_dirty = True
        for call in [k for k, v in self.open_calls.items() if v.agent_id == agent.agent_id]:
            if self.open_calls[call].session_id == agent.session_id:
                del self.open_calls[call]
        duration = fields.pop("duration_ms", None)
        if duration is None:
            duration = max(0, ts - agent.spawned_at)
        return [
            self.event(
                "agent_done",
                ts,
                agent.session_id,
                agent.agent_id,
                outcome=outcome,
                duration_ms=duration,
                parent_id=agent.parent_id,
                agent_type=agent.agent_type,
                waited_ms=agent.waited_ms,
                usage=agent.usage,
                **fields,
            )
        ]

    def end_session(self, session: str, ts: int, reason: str) -> list[Event]:
        out: list[Event] = []
        outcome = "lost" if reason == "idle" else "unknown"
        for agent in [a for a in self.agents.values() if a.session_id == session and a.agent_id != MAIN_AGENT]:
            out += self.done(agent, outcome, ts, reason=reason)
        main = self.main(session)
        if main is not None:
            self._drop(main)
        self.forget(session)
        for k in [k for k, v in self.open_calls.items() if v.session_id == session]:
            del self.open_calls[k]
        out.append(self.event("session_end", ts, session, MAIN_AGENT, reason=reason))
        return out

    def publish_updates(self, ts: int) -> list[Event]:
        """One agent_update per agent whose view changed since viewers were last told."""
        out: list[Event] = []
        for key in sorted(self.touched):
            agent = self.agents.get(key)
            if agent is None:
                continue
            now = agent.view()
            before = self.views.get(key)
            if before == now:
                continue
            self.views[key] = now
            diff = {n: v for n, v, old in zip(VIEW_FIELDS, now, before or (), strict=False) if v != old}
            if before is None:
                diff = agent.view_dict()
            out.append(self.event("agent_update", ts, agent.session_id, agent.agent_id, **diff))
        self.touched.clear()
        return out

    # ---- bounded memory
    def trim(self) -> None:
        # Drop the oldest tenth at once: deleting one key at a time from a dict's front makes each
        # next(iter()) walk over the deleted slots, which showed as ~9% of a catch-up's CPU.
        limit = self.limits.max_open
        if len(self.open_calls) > limit:
            for key in list(itertools.islice(self.open_calls, len(self.open_calls) - limit + limit // 10)):
                del self.open_calls[key]
        limit = self.limits.max_ended
        if len(self.ended) > limit:
            for key in list(itertools.islice(self.ended, len(self.ended) - limit + limit // 10)):
                del self.ended[key]

    # ---- saved with the checkpoint, so a restart joins as if it never stopped
    def state(self) -> tuple[dict[str, str], list[str]]:
        """Checkpoint fields to write and to delete since the last call: only what changed, so a commit's cost
        does not grow with the number of open calls. Each open call is a field `call:<tool_use_id>`."""
        sets = {_call_field(k): compact_json(v) for k, v in self.open_calls.items() if k not in self._saved}
        dels = [_call_field(k) for k in self._saved if k not in self.open_calls] + self._stale_fields
        self._saved, self._stale_fields = set(self.open_calls), []
        if self.ended_dirty:
            sets["ended"] = compact_json(list(self.ended))
            self.ended_dirty = False
        return sets, dels

    def full_state(self) -> dict[str, str]:
        """Every checkpoint field of the join state, for a Redis that lost the checkpoint."""
        self._saved = set(self.open_calls)
        out = {_call_field(k): compact_json(v) for k, v in self.open_calls.items()}
        out["ended"] = compact_json(list(self.ended))
        return out

    def restore(self, checkpoint: Mapping[str, str], records: list[dict[str, Any]], foreign: bool = False) -> None:
        """The join state committed with the checkpoint; a foreign checkpoint's is dropped (deleted next commit)."""
        self.open_calls, self._saved = {}, set()
        for name, value in checkpoint.items():
            if not name.startswith(CALL_FIELD):
                continue
            with contextlib.suppress(ValueError, TypeError):
                call_id = json.loads('"' + name[len(CALL_FIELD) :] + '"')
                self._saved.add(call_id)
                call = json.loads(value)
                if not foreign and isinstance(call, list) and len(call) == len(OpenCall._fields):
                    self.open_calls[call_id] = OpenCall(*call)
        # "state" held every open call in one field before they were saved one by one: removed once.
        self._stale_fields = ["state"] if "state" in checkpoint else []
        try:
            ended = [] if foreign else json.loads(checkpoint.get("ended") or "[]")
        except ValueError:
            ended = []
        self.ended = dict.fromkeys(str(k) for k in ended) if isinstance(ended, list) else {}
        self.ended_dirty = foreign  # a foreign checkpoint's ended ids are replaced by ours
        self.agents = {}
        for rec in records:
            if rec.get("source") == self.source:
                agent = Agent.from_record(rec)
                self.agents[alive_field(agent.session_id, agent.agent_id)] = agent
        # The hash holds what viewers were told: that is where the diffing starts again.
        self.views = {k: a.view() for k, a in self.agents.items()}
        self.touched.clear()
        self.changed.clear()
        self.removed.clear()
        self.counters.clear()


def _call_field(call_id: str) -> str:
    """The checkpoint field of an open call: its id as JSON escapes it, so any id (a lone surrogate too) is text
    Redis can store, and the same id always has the same field."""
    if call_id.isascii() and call_id.isprintable() and '"' not in call_id and "\\" not in call_id:
        return CALL_FIELD + call_id  # what JSON escaping leaves as it is (every id Claude Code makes)
    return CALL_FIELD + compact_json(call_id)[1:-1]
