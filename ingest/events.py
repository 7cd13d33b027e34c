"""Raw Claude Code hook payloads -> normalized agentwatch events.

The Normalizer checks a payload, finds the agent it is about and hands it to the rule for its hook event:
spawns.py (sub-agents from first sign to end), tools.py (calls), waiting.py (the person), lifecycle.py
(sessions, idleness). graph.py holds the state and publishes every change to it. It never raises on a
payload: one it cannot use becomes a Rejected and changes nothing.
See ../shared/reference/claude-code-hooks.md for what each Claude Code version sends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contract import HOOK_EVENTS, MAIN_AGENT, compact_json

from . import agent_usage, lifecycle, spawns, tools, waiting
from .agent import ID_CAP, Agent, Limits, Rejected, timestamp
from .graph import Ctx, Event, Graph
from .payload import Payload
from .pricing import Pricing
from .transcripts import Transcripts
from .usage import Ledger

__all__ = ("KNOWN_HOOKS", "Limits", "Normalizer", "Rejected")

TOOL_HOOKS = frozenset({"PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest"})
# Registered ones, plus events newer Claude Code sends that we know and deliberately ignore.
KNOWN_HOOKS = frozenset(
    {*HOOK_EVENTS, "PostToolBatch", "TaskCreated", "TaskCompleted", "TeammateIdle", "UserPromptExpansion"}
)


@dataclass
class Normalizer:
    """Turns payloads into events and keeps the alive set. One per ingest source."""

    source: str
    pricing: Pricing
    limits: Limits = field(default_factory=Limits)
    redact: Callable[[str], str] = lambda s: s
    details: bool = False  # publish prompts and tool input summaries (redacted); off by default
    transcripts: bool = False  # follow the transcript files payloads name: live usage per agent
    graph: Graph = field(init=False)
    followed: Transcripts | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        g = self.graph = Graph(self.source, self.pricing, self.limits, self.redact, self.details)
        if self.transcripts:
            t = self.followed = Transcripts(Ledger(self.pricing.cost))
            g.settle = lambda agent, ts: agent_usage.settle(g, t, agent, ts)
            g.forget = t.drop_session

    @property
    def agents(self) -> dict[str, Agent]:
        return self.graph.agents

    # ---- state, saved with the checkpoint so a restart joins as if it never stopped
    def state(self) -> tuple[dict[str, str], list[str]]:
        """Checkpoint fields to set and to delete: the join state, only what changed since the last call."""
        sets, dels = self.graph.state()
        if self.followed is not None:
            more, gone = self.followed.state()
            sets.update(more)
            dels += gone
        return sets, dels

    def full_state(self) -> dict[str, str]:
        """Every checkpoint field of the join state, for a Redis that lost the checkpoint."""
        out = self.graph.full_state()
        if self.followed is not None:
            out.update(self.followed.full_state())
        return out

    def restore(self, checkpoint: Mapping[str, str], records: list[dict[str, Any]], foreign: bool = False) -> None:
        self.graph.restore(checkpoint, records, foreign)
        if self.followed is not None:
            self.followed.restore(checkpoint, foreign)

    def take_changes(self) -> tuple[dict[str, str], list[str], dict[str, int]]:
        """Since the last call: alive fields to set (JSON), alive fields to delete, stats increments."""
        g = self.graph
        sets = {f: compact_json(g.agents[f].record(self.source)) for f in g.changed}
        dels = sorted(g.removed)
        counters = g.counters
        g.changed, g.removed, g.counters = set(), set(), {}
        return sets, dels, counters

    def all_records(self) -> dict[str, str]:
        return {f: compact_json(a.record(self.source)) for f, a in self.graph.agents.items()}

    # ---- the entry points
    def feed(self, payload: Any, now_ms: int) -> list[Event]:
        ctx = _context(payload, now_ms)
        g = self.graph
        # Reject before anything changes; then redacted like every published name.
        tool = (g.name(_tool(ctx)) or "tool") if ctx.hook in TOOL_HOOKS else ""
        out: list[Event] = []
        if ctx.hook != "SessionEnd":
            out += lifecycle.ensure_session(g, ctx)
        if self.followed is not None:
            agent_usage.follow_payload(self.followed, ctx)
        out += self._dispatch(ctx, tool)
        g.trim()
        out += g.publish_updates(ctx.ts)
        return out

    def expire(self, now_ms: int) -> list[Event]:
        """End what timed out, and read the transcripts: what changed, as events (once a second)."""
        out = lifecycle.expire(self.graph, now_ms)
        if self.followed is not None:
            agent_usage.poll(self.graph, self.followed, now_ms)
        return out + self.graph.publish_updates(now_ms)

    def _dispatch(self, ctx: Ctx, tool: str) -> list[Event]:
        g, hook = self.graph, ctx.hook
        if hook == "SessionEnd":
            return lifecycle.session_end(g, ctx)
        if hook == "SubagentStop":
            return spawns.subagent_stop(
                g, ctx, g.get(ctx.session, ctx.agent_id) if ctx.agent_id != MAIN_AGENT else None
            )
        rule = SIMPLE_RULES.get(hook)
        if rule is not None:
            return rule(g, ctx)
        agent, out = self._agent_for(ctx)
        if hook == "PreToolUse":
            return out + tools.tool_use(g, ctx, agent, tool)
        if hook in ("PostToolUse", "PostToolUseFailure"):
            return out + tools.tool_finished(g, ctx, agent, tool, hook == "PostToolUseFailure")
        if hook == "PermissionRequest":
            asker = agent if ctx.agent_id != MAIN_AGENT else None
            return out + waiting.permission_request(g, ctx, asker)
        if hook == "Notification":
            return out + waiting.notification(g, ctx, agent if ctx.agent_id != MAIN_AGENT else None)
        if hook == "StopFailure":
            return out + lifecycle.stop_failure(g, ctx, agent)
        return out  # SubagentStart, and known events that change nothing we draw

    def _agent_for(self, ctx: Ctx) -> tuple[Agent, list[Event]]:
        """The agent this payload is about; a new agent id joins its spawn, or becomes a ghost."""
        g = self.graph
        agent = g.get(ctx.session, ctx.agent_id)
        if agent is not None:
            if agent.agent_id != MAIN_AGENT:  # ensure_session has touched the orchestrator already
                g.touch(agent, ctx.ts)
            if agent.stopping_since is not None:
                agent.stopping_since = None  # resumed (SendMessage), or the stop was premature
            return agent, []
        raw_type = ctx.payload.get("agent_type")
        agent_type = "" if raw_type == "" else g.name(raw_type)  # "" is Claude Code's internal helper
        return spawns.first_sight(g, ctx, ctx.agent_id, agent_type)


SIMPLE_RULES: dict[str, Callable[[Graph, Ctx], list[Event]]] = {
    "SessionStart": lifecycle.session_start,
    "UserPromptSubmit": lifecycle.prompt,
    "Stop": lifecycle.stop,
    "PreCompact": lambda g, ctx: lifecycle.compaction(g, ctx, True),
    "PostCompact": lambda g, ctx: lifecycle.compaction(g, ctx, False),
    "PostToolBatch": lambda g, ctx: [],
    "TaskCreated": lambda g, ctx: [],
    "TaskCompleted": lambda g, ctx: [],
    "TeammateIdle": lambda g, ctx: [],
    "UserPromptExpansion": lambda g, ctx: [],
}


def _context(payload: Any, now_ms: int) -> Ctx:
    if not isinstance(payload, (dict, Payload)):
        raise Rejected("not_object", f"expected a JSON object, got {type(payload).__name__}")
    hook = payload.get("hook_event_name")
    if not isinstance(hook, str) or not hook:
        raise Rejected("no_hook_event", "expected a string hook_event_name")
    if hook not in KNOWN_HOOKS:
        raise Rejected("unknown_hook_event", f"unknown hook_event_name {hook[:60]!r}")
    session = payload.get("session_id")
    if not isinstance(session, str) or session not in _VALID_IDS:  # (a list or dict is not hashable)
        if not isinstance(session, str) or not session or not _valid_id(session):
            raise Rejected("bad_session_id", f"expected a string session_id without '/', got {session!r:.60}")
        _remember(session)
    raw_agent = payload.get("agent_id")
    if raw_agent is not None and (not isinstance(raw_agent, str) or raw_agent not in _VALID_IDS):
        if not isinstance(raw_agent, str) or not _valid_id(raw_agent):
            raise Rejected("bad_agent_id", f"expected agent_id to be a string without '/', got {raw_agent!r:.60}")
        _remember(raw_agent)
    # Older Claude Code puts an agent_type on the main thread under --agent: detect main by a missing agent_id.
    return Ctx(payload, hook, session, raw_agent or MAIN_AGENT, timestamp(payload.get("_received_at"), now_ms))


# Ids already checked: a session's every line names the same few, and checking one costs an encode.
_VALID_IDS: set[str] = set()
VALID_IDS_KEPT = 4096


def _remember(value: str) -> None:
    if len(_VALID_IDS) >= VALID_IDS_KEPT:
        _VALID_IDS.clear()
    _VALID_IDS.add(value)


def _valid_id(value: str) -> bool:
    """Usable as part of a Redis hash field name: no '/', capped, encodable as UTF-8 (not JSON-escaped there)."""
    return "/" not in value and len(value) <= ID_CAP and _storable(value)


def _tool(ctx: Ctx) -> str:
    tool = ctx.payload.get("tool_name")
    if not isinstance(tool, str) or not tool:
        raise Rejected("no_tool_name", f"{ctx.hook} needs a string tool_name, got {tool!r:.60}")
    return tool[:100]


def _storable(value: str) -> bool:
    """Encodable as UTF-8: ids become Redis hash field names, which are not JSON-escaped (no lone surrogates)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
