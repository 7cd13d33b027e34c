"""One agent as ingest keeps it, and the small readers every rule uses on raw payloads.

An Agent is both the record in the alive hash and what live viewers are told: the fields in contract.VIEW_FIELDS
are published whenever they change (agent_spawn carries all of them, agent_update the changed ones), so a
viewer applying the stream holds exactly what the hash holds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import Any

from contract import VIEW_FIELDS

ID_CAP = 200  # session and agent ids longer than this are refused as bad input
NAME_CAP = 100  # tool names, agent types, models, skills, reasons: identifiers, not text
TEXT_CAP = 200  # descriptions and messages are labels, not documents


@dataclass
class Agent:
    session_id: str
    agent_id: str
    parent_id: str | None
    agent_type: str
    model: str | None
    description: str | None
    tool_use_id: str | None  # the spawning call (PreToolUse(Agent|Task)) when we saw it
    spawned_at: int
    last_seen: int
    tool_count: int = 0
    background: bool = False
    link: str = "confirmed"  # how we know the parent: confirmed (the spawning call), inferred, or none
    provisional: bool = False  # agent_id is a stand-in (the spawn's tool_use_id) until Claude Code's id is known
    project: str | None = None
    waiting: str | None = None  # on the person: "permission" (a dialog) or "input" (idle prompt)
    waiting_tool: str | None = None
    waiting_since: int | None = None
    waited_ms: int = 0  # total time spent waiting on the person, finished waits only
    compacting: bool = False
    asked: str | None = None  # what it was asked, first line (--publish-details only)
    usage: dict[str, Any] | None = None  # its own tokens and cost (ingest/usage.py); replaced, never changed
    sub_usage: dict[str, Any] | None = None  # of its descendants that ended, and inline sub-agent turns
    # Counters in the record (so a snapshot has them) that viewers count themselves from the events.
    tools: dict[str, int] = field(default_factory=dict)  # calls by tool: tool_use / skill_use
    prompts: int = 0  # the orchestrator's: prompt events
    agents_total: int = 0  # the orchestrator's: agent_spawn events, less agent_done with merged_into
    # Internal, kept in the record so a restart carries on; never published as a view change.
    spawn_open: bool = False  # its PostToolUse(Agent|Task) has not come yet (a foreground run ends there)
    waiting_call: str | None = None  # the open call a permission dialog is about
    stopping_since: int | None = None  # stopped; waiting a little for its PostToolUse(Agent) to bring the cost
    stop_outcome: str = "unknown"

    def view(self) -> tuple[Any, ...]:
        return _view(self)

    def view_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in VIEW_FIELDS}

    def record(self, source: str) -> dict[str, Any]:
        rec = {name: getattr(self, name) for name in RECORD_FIELDS}
        rec["source"] = source
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Agent:
        """An alive record back into an Agent (a restart): its fields as written, the required ones coerced."""
        values: dict[str, Any] = {n: rec.get(n) for n in ("parent_id", "model", "description", "tool_use_id")}
        values.update((n, rec[n]) for n in RECORD_FIELDS if n in rec)
        values.update(
            session_id=str(rec["session_id"]),
            agent_id=str(rec["agent_id"]),
            agent_type=str(rec.get("agent_type") or "agent"),
            spawned_at=int(rec.get("spawned_at") or 0),
            last_seen=int(rec.get("last_seen") or 0),
        )
        return cls(**values)


RECORD_FIELDS = tuple(f.name for f in fields(Agent))
_view = attrgetter(*VIEW_FIELDS)  # one C call per agent per payload: diffing views is on the hot path


@dataclass
class Limits:
    idle_timeout_ms: int = 30 * 60 * 1000  # no activity in an agent's whole subtree for this long: ended as "lost"
    stop_grace_ms: int = 5_000  # a foreground agent's PostToolUse(Agent) may follow its SubagentStop this late
    open_call_ms: int = 4 * 30 * 60 * 1000  # a call open this long (4 idle timeouts) was abandoned mid-call
    max_open: int = 2_000  # open tool calls kept (saved with every commit); oldest dropped
    max_ended: int = 500  # ended agent ids remembered, so a late SubagentStop cannot end another agent


class Rejected(Exception):
    """A payload we cannot turn into events: reason is a short counter name, detail says what was expected."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def identifier(value: Any) -> str | None:
    """An id from a payload (a tool_use_id), capped; names that are shown go through Graph.name (redacted)."""
    return value[:NAME_CAP] if isinstance(value, str) and value else None


def integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e15:
        return int(value)
    return None


def project_of(cwd: Any) -> str | None:
    if not isinstance(cwd, str) or not cwd:
        return None
    return cwd.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1][:80] or None


def digest(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def timestamp(value: Any, fallback: int) -> int:
    """The hook stamps integer ms; older captures carry ISO strings. Anything else: the time we read it."""
    if isinstance(value, bool):
        return fallback
    if isinstance(value, int | float) and value == value and 1e11 < value < 1e14:
        return int(value)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return fallback
    return fallback


DETAIL_FIELDS = ("command", "file_path", "path", "pattern", "url", "query", "skill", "description")


def call_key(tool_input: Any) -> str | None:
    """What a call is about (its command, path, ...): pairs a PermissionRequest, which has no tool_use_id,
    with the open call it asks about. Cheap on purpose: it runs for every PreToolUse."""
    if not isinstance(tool_input, dict):
        return None
    for field_name in DETAIL_FIELDS:
        value = tool_input.get(field_name)
        if isinstance(value, str) and value:
            # A digest: the checkpoint in Redis keeps it, and the command itself may hold a secret.
            return hashlib.blake2b(value[:1000].encode(errors="replace"), digest_size=8).hexdigest()
    return None
