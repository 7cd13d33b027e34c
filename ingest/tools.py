"""Tool calls: a pulse on the agent that made each call, and the open calls that keep an agent busy.

A call is open from its PreToolUse to its PostToolUse or PostToolUseFailure. An agent with an open call is
not idle, however long the call takes; the call of a foreground Agent spawn stays open while the sub-agent
runs. Calls that never close (a denied permission gets no Post) are dropped at the agent's next call after
the dialog, at the end of the orchestrator's turn, or after Limits.open_call_ms.
"""

from __future__ import annotations

from typing import Any

from .agent import DETAIL_FIELDS, Agent, call_key, identifier, integer
from .graph import Ctx, Event, Graph, OpenCall
from .spawns import SPAWN_TOOLS, spawn_call, spawn_returned
from .waiting import after_call, before_call

DETAIL_CAP = 300


def tool_use(g: Graph, ctx: Ctx, caller: Agent, tool: str) -> list[Event]:
    tool_use_id = identifier(ctx.payload.get("tool_use_id"))
    tool_input = ctx.payload.get("tool_input")
    tool_input = tool_input if isinstance(tool_input, dict) else {}
    if caller.waiting is not None:
        before_call(g, caller, ctx.ts)
    if caller.compacting:
        caller.compacting = False
        g.mark(caller)
    caller.tool_count += 1  # the caller was touched when the payload found it
    caller.tools[tool] = caller.tools.get(tool, 0) + 1
    if tool_use_id:
        g.open_calls[tool_use_id] = OpenCall(ctx.session, caller.agent_id, tool, ctx.ts, call_key(tool_input))
    out: list[Event] = []
    if tool == "Skill":
        skill = g.name(tool_input.get("skill")) or g.name(tool_input.get("command"))
        out.append(
            g.event("skill_use", ctx.ts, ctx.session, caller.agent_id, tool=tool, tool_use_id=tool_use_id, skill=skill)
        )
    else:
        extra = {"detail": _detail(g, tool_input)} if g.details else {}
        out.append(
            g.event("tool_use", ctx.ts, ctx.session, caller.agent_id, tool=tool, tool_use_id=tool_use_id, **extra)
        )
    if tool in SPAWN_TOOLS:
        out += spawn_call(g, ctx, caller, tool_use_id, tool_input)
    return out


def tool_finished(g: Graph, ctx: Ctx, caller: Agent, tool: str, failed: bool) -> list[Event]:
    tool_use_id = identifier(ctx.payload.get("tool_use_id"))
    opened = g.open_calls.pop(tool_use_id, None) if tool_use_id else None
    after_call(g, caller, tool_use_id, tool, ctx.ts)
    duration = integer(ctx.payload.get("duration_ms"))
    if duration is None and opened is not None:
        duration = max(0, ctx.ts - int(opened.ts))
    extra: dict[str, Any] = {}
    if failed:
        error = ctx.payload.get("error")
        first = error.strip().splitlines()[0] if isinstance(error, str) and error.strip() else None
        extra = {"error": g.text(first), "is_interrupt": ctx.payload.get("is_interrupt") is True}
    kind = "tool_fail" if failed else "tool_done"
    out = [
        g.event(
            kind,
            ctx.ts,
            ctx.session,
            caller.agent_id,
            tool=tool,
            tool_use_id=tool_use_id,
            duration_ms=duration,
            **extra,
        )
    ]
    if tool in SPAWN_TOOLS:
        out += spawn_returned(g, ctx, tool_use_id, failed)
    return out


def close_turn(g: Graph, session: str, agent_id: str) -> None:
    """The orchestrator's turn is over: none of its calls is still running (denied ones never got a Post).
    Spawn calls stay: a foreground sub-agent's call closes with its PostToolUse."""
    for call_id in [
        k
        for k, v in g.open_calls.items()
        if v.session_id == session and v.agent_id == agent_id and v.tool not in SPAWN_TOOLS
    ]:
        del g.open_calls[call_id]


def _detail(g: Graph, tool_input: dict[str, Any]) -> str | None:
    """What a tool call is about, in one short line: its command, path, pattern or address."""
    for field_name in DETAIL_FIELDS:
        value = g.text(tool_input.get(field_name), DETAIL_CAP)
        if value:
            return " ".join(value.split())
    return None
