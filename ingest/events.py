"""Raw Claude Code hook payloads -> normalized agentwatch events.

The Normalizer keeps what it needs to join hooks into a graph (alive agents, spawns not yet linked to an
agent_id, open tool calls). It never raises on a payload: a payload it cannot use becomes a Rejected.
See ../shared/reference/claude-code-hooks.md for what each Claude Code version sends.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contract import HOOK_EVENTS, MAIN_AGENT, alive_field, compact_json

from .pricing import Pricing

TOOL_HOOKS = frozenset({"PreToolUse", "PostToolUse", "PostToolUseFailure"})
SPAWN_TOOLS = frozenset({"Agent", "Task"})  # "Task" before Claude Code 2.1.63; never TaskCreate and friends
# Registered ones, plus events newer Claude Code sends that we know and deliberately ignore.
KNOWN_HOOKS = frozenset(
    {
        *HOOK_EVENTS,
        "StopFailure",
        "PostCompact",
        "PostToolBatch",
        "TaskCreated",
        "TaskCompleted",
        "TeammateIdle",
        "UserPromptExpansion",
    }
)
TEXT_CAP = 200  # descriptions and messages are labels, not documents
DETAIL_CAP = 300
DETAIL_FIELDS = ("command", "file_path", "path", "pattern", "url", "query", "skill", "description")
MARKER_RE = re.compile(r"=== *STATUS-TRUTH MARKER *===(.*)", re.S)
SHIPPED_RE = re.compile(r"shipped\s*:\s*([A-Za-z_-]+)", re.I)
SHIPPED_OUTCOME = {
    "functional": "success",
    "yes": "success",
    "true": "success",
    "complete": "success",
    "completed": "success",
    "done": "success",
    "partial": "partial",
    "partially": "partial",
    "no": "failure",
    "none": "failure",
    "false": "failure",
    "broken": "failure",
    "failed": "failure",
    "nothing": "failure",
}
STATUS_OUTCOME = {
    "completed": "success",
    "success": "success",
    "failed": "failure",
    "error": "failure",
    "killed": "failure",
    "cancelled": "failure",
    "stopped": "failure",
}
FINISHED_BACKGROUND = frozenset({"completed", "failed", "error", "killed", "cancelled", "stopped"})


class Rejected(Exception):
    """A payload we cannot turn into events: reason is a short counter name, detail says what was expected."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class Agent:
    session_id: str
    agent_id: str
    parent_id: str | None
    agent_type: str
    model: str | None
    description: str | None
    tool_use_id: str | None
    spawned_at: int
    last_seen: int
    tool_count: int = 0
    background: bool = False
    link: str = "confirmed"  # how we know the parent: confirmed (tool_use_id), inferred, or none
    project: str | None = None
    stopping_since: int | None = None  # foreground agent stopped; waiting for its PostToolUse(Agent)
    stop_outcome: str = "unknown"

    def record(self, source: str) -> dict[str, Any]:
        rec = {
            "session_id": self.session_id,
            "agent_id": self.agent_id,
            "parent_id": self.parent_id,
            "agent_type": self.agent_type,
            "model": self.model,
            "description": self.description,
            "tool_use_id": self.tool_use_id,
            "spawned_at": self.spawned_at,
            "last_seen": self.last_seen,
            "tool_count": self.tool_count,
            "background": self.background,
            "link": self.link,
            "source": source,
        }
        if self.project:
            rec["project"] = self.project
        if self.stopping_since is not None:
            rec["stopping_since"] = self.stopping_since
            rec["stop_outcome"] = self.stop_outcome
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Agent:
        return cls(
            session_id=str(rec["session_id"]),
            agent_id=str(rec["agent_id"]),
            parent_id=rec.get("parent_id"),
            agent_type=str(rec.get("agent_type") or "agent"),
            model=rec.get("model"),
            description=rec.get("description"),
            tool_use_id=rec.get("tool_use_id"),
            spawned_at=int(rec.get("spawned_at") or 0),
            last_seen=int(rec.get("last_seen") or 0),
            tool_count=int(rec.get("tool_count") or 0),
            background=bool(rec.get("background")),
            link=str(rec.get("link") or "confirmed"),
            project=rec.get("project"),
            stopping_since=rec.get("stopping_since"),
            stop_outcome=str(rec.get("stop_outcome") or "unknown"),
        )


@dataclass
class Limits:
    idle_timeout_ms: int = 30 * 60 * 1000  # no activity for this long: ended as "lost"
    stop_grace_ms: int = 5_000  # a foreground agent's PostToolUse(Agent) may follow its SubagentStop this late
    max_pending: int = 2_000  # spawns and open tool calls kept for joining (saved with every commit); oldest dropped


@dataclass
class Normalizer:
    """Turns payloads into events and keeps the alive set. One per ingest source."""

    source: str
    pricing: Pricing
    limits: Limits = field(default_factory=Limits)
    redact: Callable[[str], str] = lambda s: s
    details: bool = False  # publish prompts and tool input summaries (redacted); off by default
    agents: dict[str, Agent] = field(default_factory=dict)  # alive_field -> Agent
    # spawning tool_use_id -> spawn info, until the spawned agent's id is known
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    open_tools: dict[str, dict[str, Any]] = field(default_factory=dict)  # tool_use_id -> {session, agent, tool, ts}
    changed: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)

    # ---- state, saved with the checkpoint so a restart joins as if it never stopped
    def state(self) -> dict[str, Any]:
        return {"pending": self.pending, "open_tools": self.open_tools}

    def restore(self, state: dict[str, Any], records: list[dict[str, Any]]) -> None:
        self.pending = dict(state.get("pending") or {})
        self.open_tools = dict(state.get("open_tools") or {})
        self.agents = {}
        for rec in records:
            if rec.get("source") == self.source:
                agent = Agent.from_record(rec)
                self.agents[alive_field(agent.session_id, agent.agent_id)] = agent
        self.changed.clear()
        self.removed.clear()

    def take_changes(self) -> tuple[dict[str, str], list[str]]:
        """Alive-hash writes since the last call: fields to set (JSON) and fields to delete."""
        sets = {f: compact_json(self.agents[f].record(self.source)) for f in self.changed}
        dels = sorted(self.removed)
        self.changed = set()
        self.removed = set()
        return sets, dels

    def all_records(self) -> dict[str, str]:
        return {f: compact_json(a.record(self.source)) for f, a in self.agents.items()}

    # ---- the entry point
    def feed(self, payload: Any, now_ms: int) -> list[dict[str, Any]]:
        if not isinstance(payload, dict):
            raise Rejected("not_object", f"expected a JSON object, got {type(payload).__name__}")
        hook = payload.get("hook_event_name")
        if not isinstance(hook, str) or not hook:
            raise Rejected("no_hook_event", "expected a string hook_event_name")
        if hook not in KNOWN_HOOKS:
            raise Rejected("unknown_hook_event", f"unknown hook_event_name {hook[:60]!r}")
        session = payload.get("session_id")
        if not isinstance(session, str) or not session or "/" in session or len(session) > 200:
            raise Rejected("bad_session_id", f"expected a string session_id without '/', got {session!r:.60}")
        ts = _timestamp(payload.get("_received_at"), now_ms)
        raw_agent = payload.get("agent_id")
        if raw_agent is not None and (not isinstance(raw_agent, str) or "/" in raw_agent or len(raw_agent) > 200):
            raise Rejected("bad_agent_id", f"expected agent_id to be a string without '/', got {raw_agent!r:.60}")
        agent_id = raw_agent or MAIN_AGENT
        ctx = _Ctx(payload, session, agent_id, ts)
        if hook in TOOL_HOOKS:
            ctx.tool()  # reject before anything changes, so a rejected line leaves no trace
        # Older Claude Code puts an agent_type on the main thread under --agent: detect main by a missing agent_id.
        handler = getattr(self, "_on_" + hook, None)
        out: list[dict[str, Any]] = []
        if hook != "SessionEnd":
            out += self._ensure_session(ctx)
        if handler is not None:
            out += handler(ctx)
        self._trim()
        return out

    def expire(self, now_ms: int) -> list[dict[str, Any]]:
        """End what nothing will end: idle agents (lost), foreground stops whose PostToolUse never came."""
        out: list[dict[str, Any]] = []
        idle_before = now_ms - self.limits.idle_timeout_ms
        for key, agent in list(self.agents.items()):
            if key not in self.agents:
                continue
            if agent.stopping_since is not None and agent.stopping_since <= now_ms - self.limits.stop_grace_ms:
                out += self._done(agent, agent.stop_outcome, now_ms)
            elif agent.last_seen < idle_before:
                if agent.agent_id == MAIN_AGENT:
                    out += self._end_session(agent.session_id, now_ms, "idle")
                else:
                    out += self._done(agent, "lost", now_ms)
        for table in (self.pending, self.open_tools):
            for k in [k for k, v in table.items() if v["ts"] < idle_before]:
                del table[k]
        return out

    # ---- helpers
    def _event(self, kind: str, ts: int, session: str, agent_id: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "ts": ts, "session_id": session, "agent_id": agent_id, **fields}

    def _touch(self, agent: Agent, ts: int) -> None:
        agent.last_seen = max(agent.last_seen, ts)
        self.changed.add(alive_field(agent.session_id, agent.agent_id))

    def _add(self, agent: Agent) -> dict[str, Any]:
        key = alive_field(agent.session_id, agent.agent_id)
        self.agents[key] = agent
        self.removed.discard(key)
        self.changed.add(key)
        return self._event(
            "agent_spawn",
            agent.spawned_at,
            agent.session_id,
            agent.agent_id,
            parent_id=agent.parent_id,
            agent_type=agent.agent_type,
            model=agent.model,
            description=agent.description,
            tool_use_id=agent.tool_use_id,
            background=agent.background,
            link=agent.link,
        )

    def _remove(self, agent: Agent) -> None:
        key = alive_field(agent.session_id, agent.agent_id)
        self.agents.pop(key, None)
        self.changed.discard(key)
        self.removed.add(key)

    def _done(self, agent: Agent, outcome: str, ts: int, **fields: Any) -> list[dict[str, Any]]:
        self._remove(agent)
        duration = fields.pop("duration_ms", None)
        if duration is None:
            duration = max(0, ts - agent.spawned_at)
        return [
            self._event(
                "agent_done",
                ts,
                agent.session_id,
                agent.agent_id,
                outcome=outcome,
                duration_ms=duration,
                parent_id=agent.parent_id,
                agent_type=agent.agent_type,
                **fields,
            )
        ]

    def _end_session(self, session: str, ts: int, reason: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        outcome = "lost" if reason == "idle" else "unknown"
        for agent in [a for a in self.agents.values() if a.session_id == session and a.agent_id != MAIN_AGENT]:
            out += self._done(agent, outcome, ts, reason=reason)
        main = self.agents.get(alive_field(session, MAIN_AGENT))
        if main is not None:
            self._remove(main)
        for table in (self.pending, self.open_tools):
            for k in [k for k, v in table.items() if v["session_id"] == session]:
                del table[k]
        out.append(self._event("session_end", ts, session, MAIN_AGENT, reason=reason))
        return out

    def _ensure_session(self, ctx: _Ctx) -> list[dict[str, Any]]:
        key = alive_field(ctx.session, MAIN_AGENT)
        main = self.agents.get(key)
        if main is None:
            p = ctx.payload
            model = _str(p.get("model")) if ctx.hook == "SessionStart" else None
            main = Agent(ctx.session, MAIN_AGENT, None, "main", model, None, None, ctx.ts, ctx.ts)
            main.project = _project(p.get("cwd"))
            self.agents[key] = main
            self.removed.discard(key)
            self.changed.add(key)
            return [self._event("session_start", ctx.ts, ctx.session, MAIN_AGENT, model=model, project=main.project)]
        self._touch(main, ctx.ts)
        return []

    def _agent_for(self, ctx: _Ctx) -> tuple[Agent, list[dict[str, Any]]]:
        """The agent that made this call; a stray agent_id becomes a ghost node on first sight."""
        key = alive_field(ctx.session, ctx.agent_id)
        agent = self.agents.get(key)
        if agent is not None:
            self._touch(agent, ctx.ts)
            if agent.stopping_since is not None and ctx.hook != "SubagentStop":
                agent.stopping_since = None  # it was resumed (SendMessage) or the stop was premature
            return agent, []
        return self._spawn_known(ctx, ctx.agent_id, _str(ctx.payload.get("agent_type")))

    def _spawn_known(self, ctx: _Ctx, agent_id: str, agent_type: str | None) -> tuple[Agent, list[dict[str, Any]]]:
        """First sight of an agent id: join it to the oldest unlinked spawn of its type in the session."""
        spawn_id = None
        candidates = [
            (v["ts"], k)
            for k, v in self.pending.items()
            if v["session_id"] == ctx.session and v.get("agent_id") is None and v["agent_type"] == agent_type
        ]
        if not candidates:
            # No agent_type to match on (older payloads): only an unambiguous spawn can be joined.
            untyped = [
                (v["ts"], k)
                for k, v in self.pending.items()
                if v["session_id"] == ctx.session and v.get("agent_id") is None
            ]
            candidates = untyped if len(untyped) == 1 else []
        if candidates:
            spawn_id = min(candidates)[1]
        return self._spawn_from(ctx, agent_id, agent_type, spawn_id, link="inferred")

    def _spawn_from(
        self, ctx: _Ctx, agent_id: str, agent_type: str | None, spawn_id: str | None, link: str
    ) -> tuple[Agent, list[dict[str, Any]]]:
        spawn = self.pending.get(spawn_id) if spawn_id else None
        if spawn is not None:
            spawn["agent_id"] = agent_id
            agent = Agent(
                ctx.session,
                agent_id,
                spawn["parent_id"],
                agent_type or spawn["agent_type"] or "agent",
                spawn["model"],
                spawn["description"],
                spawn_id,
                ctx.ts,
                ctx.ts,
                background=bool(spawn.get("background")),
                link=link,
            )
        else:
            agent = Agent(ctx.session, agent_id, MAIN_AGENT, agent_type or "agent", None, None, None, ctx.ts, ctx.ts)
            agent.link = "none"
        return agent, [self._add(agent)]

    def _trim(self) -> None:
        # Drop the oldest tenth at once: deleting one key at a time from a dict's front makes each
        # next(iter()) walk over the deleted slots, which showed as ~9% of a catch-up's CPU.
        limit = self.limits.max_pending
        for table in (self.pending, self.open_tools):
            if len(table) > limit:
                for key in list(itertools.islice(table, len(table) - limit + limit // 10)):
                    del table[key]

    # ---- one method per hook event
    def _on_SessionStart(self, ctx: _Ctx) -> list[dict[str, Any]]:
        main = self.agents[alive_field(ctx.session, MAIN_AGENT)]
        model = _str(ctx.payload.get("model"))
        if model and main.model != model:
            main.model = model
        return []

    def _on_SessionEnd(self, ctx: _Ctx) -> list[dict[str, Any]]:
        reason = _str(ctx.payload.get("reason")) or "other"
        return self._end_session(ctx.session, ctx.ts, reason)

    def _on_UserPromptSubmit(self, ctx: _Ctx) -> list[dict[str, Any]]:
        prompt = ctx.payload.get("prompt")
        size = len(prompt) if isinstance(prompt, str) else None
        extra = {"prompt": self._text(prompt, DETAIL_CAP)} if self.details else {}
        return [self._event("prompt", ctx.ts, ctx.session, MAIN_AGENT, prompt_chars=size, **extra)]

    def _on_PreToolUse(self, ctx: _Ctx) -> list[dict[str, Any]]:
        tool = ctx.tool()
        caller, out = self._agent_for(ctx)
        tool_use_id = _str(ctx.payload.get("tool_use_id"))
        tool_input = ctx.payload.get("tool_input")
        tool_input = tool_input if isinstance(tool_input, dict) else {}
        caller.tool_count += 1
        if tool_use_id:
            self.open_tools[tool_use_id] = {
                "session_id": ctx.session,
                "agent_id": caller.agent_id,
                "tool": tool,
                "ts": ctx.ts,
            }
        if tool == "Skill":
            skill = _str(tool_input.get("skill")) or _str(tool_input.get("command"))
            out.append(
                self._event(
                    "skill_use", ctx.ts, ctx.session, caller.agent_id, tool=tool, tool_use_id=tool_use_id, skill=skill
                )
            )
        else:
            extra = {"detail": self._detail(tool_input)} if self.details else {}
            out.append(
                self._event(
                    "tool_use", ctx.ts, ctx.session, caller.agent_id, tool=tool, tool_use_id=tool_use_id, **extra
                )
            )
        if tool in SPAWN_TOOLS:
            spawn: dict[str, Any] = {
                "session_id": ctx.session,
                "parent_id": caller.agent_id,
                "agent_type": _str(tool_input.get("subagent_type")) or "general-purpose",
                "model": _str(tool_input.get("model")),
                "description": self._text(tool_input.get("description")),
                "background": tool_input.get("run_in_background") is True,
                "ts": ctx.ts,
                "agent_id": None,
            }
            if tool_use_id:
                self.pending[tool_use_id] = spawn
            else:
                # Before 2.0.43 there is no tool_use_id and no SubagentStart: the spawn is all we will see
                # until PostToolUse(Task), so the sub-agent appears now under a synthetic id.
                synthetic = "task-" + _digest(ctx.session, ctx.ts, spawn["description"], caller.agent_id)
                spawn["agent_id"] = synthetic
                self.pending["synthetic:" + synthetic] = spawn
                out += self._spawn_from(ctx, synthetic, spawn["agent_type"], "synthetic:" + synthetic, "confirmed")[1]
        return out

    def _on_PostToolUse(self, ctx: _Ctx) -> list[dict[str, Any]]:
        return self._tool_finished(ctx, failed=False)

    def _on_PostToolUseFailure(self, ctx: _Ctx) -> list[dict[str, Any]]:
        return self._tool_finished(ctx, failed=True)

    def _tool_finished(self, ctx: _Ctx, failed: bool) -> list[dict[str, Any]]:
        tool = ctx.tool()
        caller, out = self._agent_for(ctx)
        tool_use_id = _str(ctx.payload.get("tool_use_id"))
        opened = self.open_tools.pop(tool_use_id, None) if tool_use_id else None
        duration = _int(ctx.payload.get("duration_ms"))
        if duration is None and opened is not None:
            duration = max(0, ctx.ts - int(opened["ts"]))
        if failed:
            error = ctx.payload.get("error")
            first = error.strip().splitlines()[0] if isinstance(error, str) and error.strip() else None
            out.append(
                self._event(
                    "tool_fail",
                    ctx.ts,
                    ctx.session,
                    caller.agent_id,
                    tool=tool,
                    tool_use_id=tool_use_id,
                    duration_ms=duration,
                    error=self._text(first),
                    is_interrupt=ctx.payload.get("is_interrupt") is True,
                )
            )
        else:
            out.append(
                self._event(
                    "tool_done",
                    ctx.ts,
                    ctx.session,
                    caller.agent_id,
                    tool=tool,
                    tool_use_id=tool_use_id,
                    duration_ms=duration,
                )
            )
        if tool in SPAWN_TOOLS:
            out += self._spawn_returned(ctx, tool_use_id, failed)
        return out

    def _spawn_returned(self, ctx: _Ctx, tool_use_id: str | None, failed: bool) -> list[dict[str, Any]]:
        """PostToolUse(Agent): the exact link (tool_use_id -> agentId); the end of a foreground run."""
        response = ctx.payload.get("tool_response")
        response = response if isinstance(response, dict) else {}
        status = _str(response.get("status"))
        agent_id = _str(response.get("agentId"))
        if tool_use_id is None:
            tool_use_id = self._synthetic_spawn(ctx)
        spawn = self.pending.get(tool_use_id) if tool_use_id else None
        if agent_id is None and spawn is not None:
            agent_id = spawn.get("agent_id")
        if agent_id is None and tool_use_id:
            agent_id = next((a.agent_id for a in self.agents.values() if a.tool_use_id == tool_use_id), None)
        out: list[dict[str, Any]] = []
        if agent_id is None or "/" in agent_id:
            if tool_use_id:
                self.pending.pop(tool_use_id, None)
            return out
        key = alive_field(ctx.session, agent_id)
        agent = self.agents.get(key)
        if agent is None:
            if status != "async_launched":
                if tool_use_id:
                    self.pending.pop(tool_use_id, None)
                return out  # already ended (SubagentStop and grace passed); nothing alive to update
            agent, spawned = self._spawn_from(ctx, agent_id, _str(response.get("agentType")), tool_use_id, "confirmed")
            out += spawned
        elif tool_use_id and agent.tool_use_id != tool_use_id and spawn is not None:
            # The inferred join picked another spawn of the same type; the exact link wins.
            agent.tool_use_id = tool_use_id
            agent.parent_id = spawn["parent_id"]
            agent.description = spawn["description"]
            agent.model = spawn["model"] or agent.model
        agent.link = "confirmed"
        resolved = _str(response.get("resolvedModel"))
        if resolved:
            agent.model = resolved
        self.changed.add(key)
        if status == "async_launched":
            agent.background = True
            if spawn is not None:
                spawn["agent_id"] = agent_id
            return out
        if tool_use_id:
            self.pending.pop(tool_use_id, None)
        outcome = _marker_outcome(_response_text(response)) or (
            "failure" if failed else STATUS_OUTCOME.get(status or "", agent.stop_outcome)
        )
        tokens = _int(response.get("totalTokens"))
        usage = response.get("usage")
        cost = self.pricing.cost(agent.model, usage if isinstance(usage, dict) else None)
        duration = _int(response.get("totalDurationMs"))
        return out + self._done(
            agent, outcome, ctx.ts, duration_ms=duration, tokens=tokens, cost_usd=cost, model=agent.model
        )

    def _synthetic_spawn(self, ctx: _Ctx) -> str | None:
        """Pre-2.0.43 payloads have no tool_use_id: pair PostToolUse(Task) with its spawn by description."""
        tool_input = ctx.payload.get("tool_input")
        description = self._text(tool_input.get("description")) if isinstance(tool_input, dict) else None
        keys = [
            (v["ts"], k)
            for k, v in self.pending.items()
            if k.startswith("synthetic:") and v["session_id"] == ctx.session and v["description"] == description
        ]
        return min(keys)[1] if keys else None

    def _on_SubagentStart(self, ctx: _Ctx) -> list[dict[str, Any]]:
        if ctx.agent_id == MAIN_AGENT:
            return []
        return self._agent_for(ctx)[1]

    def _on_SubagentStop(self, ctx: _Ctx) -> list[dict[str, Any]]:
        agent = self.agents.get(alive_field(ctx.session, ctx.agent_id))
        if ctx.agent_id == MAIN_AGENT or agent is None:
            return []  # repeated stop (stop_hook_active) or an agent already ended: idempotent
        self._touch(agent, ctx.ts)
        outcome = _marker_outcome(ctx.payload.get("last_assistant_message")) or "unknown"
        if agent.background or agent.tool_use_id is None or agent.tool_use_id not in self.pending:
            return self._done(agent, outcome, ctx.ts)
        # Foreground: its PostToolUse(Agent) follows with status, tokens and duration; wait a little for it.
        agent.stopping_since = ctx.ts
        agent.stop_outcome = outcome
        return []

    def _on_Stop(self, ctx: _Ctx) -> list[dict[str, Any]]:
        """Stop ends a turn, not the session; its background_tasks can end agents whose SubagentStop never came."""
        out: list[dict[str, Any]] = []
        tasks = ctx.payload.get("background_tasks")
        for task in tasks if isinstance(tasks, list) else []:
            if not isinstance(task, dict):
                continue
            status, task_id = _str(task.get("status")), _str(task.get("id"))
            agent = self.agents.get(alive_field(ctx.session, task_id)) if task_id else None
            if agent is not None and status in FINISHED_BACKGROUND and agent.agent_id != MAIN_AGENT:
                out += self._done(agent, STATUS_OUTCOME.get(status or "", "unknown"), ctx.ts, reason="stop")
        return out

    def _on_Notification(self, ctx: _Ctx) -> list[dict[str, Any]]:
        kind = _str(ctx.payload.get("notification_type")) or "notification"
        message = self._text(ctx.payload.get("message"))
        agent_id = ctx.agent_id
        if agent_id == MAIN_AGENT and kind == "permission_prompt" and message:
            agent_id = self._waiting_agent(ctx.session, message) or MAIN_AGENT
        else:
            self._agent_for(ctx)
        return [
            self._event(
                "notification",
                ctx.ts,
                ctx.session,
                agent_id,
                notification_type=kind,
                message=message,
                title=self._text(ctx.payload.get("title")),
            )
        ]

    def _waiting_agent(self, session: str, message: str) -> str | None:
        """Permission prompts carry no agent_id: the waiting agent is the one whose open call names that tool."""
        match = re.search(r"permission to use (\S+)", message)
        if not match:
            return None
        wanted = match.group(1).strip(".,:;").lower()
        agents = {
            str(v["agent_id"])
            for v in self.open_tools.values()
            if v["session_id"] == session and str(v["tool"]).lower().endswith(wanted)
        }
        return agents.pop() if len(agents) == 1 else None

    def _text(self, value: Any, cap: int = TEXT_CAP) -> str | None:
        if not isinstance(value, str) or not value:
            return None
        # Redact before cutting, so a secret straddling the cut is still recognised whole.
        return self.redact(value[: cap * 4])[:cap]

    def _detail(self, tool_input: dict[str, Any]) -> str | None:
        """What a tool call is about, in one short line: its command, path, pattern or address."""
        for name in DETAIL_FIELDS:
            text = self._text(tool_input.get(name), DETAIL_CAP)
            if text:
                return " ".join(text.split())
        return None


@dataclass
class _Ctx:
    payload: dict[str, Any]
    session: str
    agent_id: str
    ts: int

    @property
    def hook(self) -> str:
        return str(self.payload["hook_event_name"])

    def tool(self) -> str:
        tool = self.payload.get("tool_name")
        if not isinstance(tool, str) or not tool:
            raise Rejected("no_tool_name", f"{self.hook} needs a string tool_name, got {tool!r:.60}")
        return tool[:100]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e15:
        return int(value)
    return None


def _project(cwd: Any) -> str | None:
    if not isinstance(cwd, str) or not cwd:
        return None
    return cwd.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1][:80] or None


def _digest(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def _timestamp(value: Any, fallback: int) -> int:
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


def _response_text(response: dict[str, Any]) -> str | None:
    content = response.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [str(c["text"]) for c in content if isinstance(c, dict) and isinstance(c.get("text"), str)]
        return "\n".join(texts) or None
    return None


def _marker_outcome(text: Any) -> str | None:
    """A STATUS-TRUTH block in the final message says how it really went: `shipped: functional|partial|no`."""
    if not isinstance(text, str):
        return None
    block = MARKER_RE.search(text)
    if not block:
        return None
    shipped = SHIPPED_RE.search(block.group(1))
    if not shipped:
        return "unknown"
    return SHIPPED_OUTCOME.get(shipped.group(1).lower(), "unknown")
