"""Spawn joining: one node per sub-agent, from its first sign to its end, on every Claude Code version.

A sub-agent is drawn at the first of: PreToolUse(Agent|Task) (under a stand-in id, the call's tool_use_id),
SubagentStart, its first own event, PostToolUse(Agent) with `agentId`, or SubagentStop. When Claude Code's
real `agent_id` turns up, the same node is re-keyed to it (agent_update with previous_id). Evidence, best
first: the exact link `tool_use_id -> agentId` of PostToolUse(Agent); then an inferred join to the oldest
unlinked spawn of the same `agent_type` (or with one side unknown). See
../shared/reference/claude-code-hooks.md sections 6, 7 and 10 for what each version sends.
"""

from __future__ import annotations

from typing import Any

from contract import MAIN_AGENT

from .agent import Agent, digest, integer, text
from .agent_usage import floor_if_unread
from .graph import Ctx, Event, Graph
from .outcome import FINISHED_BACKGROUND, STATUS_OUTCOME, marker_outcome, response_text
from .usage import floor

SPAWN_TOOLS = frozenset({"Agent", "Task"})  # "Task" before Claude Code 2.1.63; never TaskCreate and friends


def spawn_call(g: Graph, ctx: Ctx, caller: Agent, tool_use_id: str | None, tool_input: dict[str, Any]) -> list[Event]:
    """PreToolUse(Agent|Task): the sub-agent is drawn now, under its call's id until its own id is known."""
    if g.by_call(ctx.session, tool_use_id) is not None:
        return []  # the same call twice (a repeated line): still one node
    agent_id = tool_use_id or "task-" + digest(ctx.session, ctx.ts, tool_input.get("description"), caller.agent_id)
    while g.get(ctx.session, agent_id) is not None:  # byte-identical calls before tool_use_id existed
        agent_id += "+"
    agent = Agent(
        ctx.session,
        agent_id,
        caller.agent_id,
        g.name(tool_input.get("subagent_type")) or "general-purpose",
        g.name(tool_input.get("model")),
        g.text(tool_input.get("description")),
        tool_use_id,
        ctx.ts,
        ctx.ts,
        background=tool_input.get("run_in_background") is True,
        provisional=True,
        spawn_open=True,
    )
    if g.details:
        agent.asked = g.first_line(tool_input.get("prompt"))
    return [g.add(agent)]


def first_sight(g: Graph, ctx: Ctx, agent_id: str, agent_type: str | None) -> tuple[Agent, list[Event]]:
    """An agent id never seen alive: it takes the oldest unlinked spawn of its type, else it is a ghost."""
    spawn = None if g.has_ended(ctx.session, agent_id) else g.unlinked(ctx.session, agent_type, only_one=True)
    if spawn is not None:
        spawn.link = "inferred"
        if agent_type:
            spawn.agent_type = agent_type
        event = g.rekey(spawn, agent_id, ctx.ts)
        g.mark(spawn, ctx.ts)
        return spawn, [event]
    # Stray agent_id (#90662), or an agent resumed after it ended: shown, with no parent but its session's.
    ghost = Agent(ctx.session, agent_id, MAIN_AGENT, agent_type or "agent", None, None, None, ctx.ts, ctx.ts)
    ghost.link = "none"
    return ghost, [g.add(ghost)]


def spawn_returned(g: Graph, ctx: Ctx, tool_use_id: str | None, failed: bool) -> list[Event]:
    """PostToolUse(Agent|Task): the exact link (tool_use_id -> agentId); the end of a foreground run."""
    response = ctx.payload.get("tool_response")
    response = response if isinstance(response, dict) else {}
    status = text(response.get("status"))
    real_id = text(response.get("agentId"))
    if real_id is not None and ("/" in real_id or len(real_id) > 200):
        real_id = None
    spawned = g.by_call(ctx.session, tool_use_id) if tool_use_id else _by_description(g, ctx)
    out: list[Event] = []
    agent = spawned
    if real_id is not None:
        holder = g.get(ctx.session, real_id)
        if spawned is not None and holder is not None and holder is not spawned:
            out += _exchange(g, ctx, spawned, holder)
            agent = holder
        elif spawned is not None and holder is None and spawned.agent_id != real_id:
            if g.has_ended(ctx.session, real_id):
                agent = spawned  # its agent already ended under another node: end this spawn here
            else:
                out.append(g.rekey(spawned, real_id, ctx.ts))
        elif spawned is None and holder is not None:
            agent = holder
            if holder.link == "none":  # a ghost: this call is its spawn, and its caller its parent
                holder.parent_id, holder.tool_use_id = ctx.agent_id, tool_use_id or holder.tool_use_id
        elif spawned is None and not g.has_ended(ctx.session, real_id):
            # First sign of this agent (no PreToolUse(Agent) hook, or it was lost): draw it now.
            tool_input = ctx.payload.get("tool_input")
            tool_input = tool_input if isinstance(tool_input, dict) else {}
            caller = g.get(ctx.session, ctx.agent_id)
            agent = Agent(
                ctx.session,
                real_id,
                caller.agent_id if caller else MAIN_AGENT,
                g.name(response.get("agentType")) or g.name(tool_input.get("subagent_type")) or "general-purpose",
                g.name(tool_input.get("model")),
                g.text(tool_input.get("description")),
                tool_use_id,
                ctx.ts,
                ctx.ts,
            )
            out.append(g.add(agent))
    if agent is None:
        return out
    agent.spawn_open = False
    agent.link = "confirmed"  # tool_use_id -> agentId: the exact link
    resolved = g.name(response.get("resolvedModel"))
    if resolved:
        agent.model = resolved
    g.mark(agent, ctx.ts)
    if status == "async_launched":
        agent.background = True
        return out
    outcome = marker_outcome(response_text(response)) or (
        "failure" if failed else STATUS_OUTCOME.get(status or "", agent.stop_outcome)
    )
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else None
    cost = g.pricing.cost(agent.model, usage)
    floor_if_unread(agent, floor(usage, cost))
    return out + g.done(
        agent,
        outcome,
        ctx.ts,
        duration_ms=integer(response.get("totalDurationMs")),
        tokens=integer(response.get("totalTokens")),
        cost_usd=cost,
        model=agent.model,
    )


def _exchange(g: Graph, ctx: Ctx, spawned: Agent, holder: Agent) -> list[Event]:
    """The exact link says `holder` belongs to the spawn `spawned` stands for: the exact link wins.

    `holder` (the node that has the real id) takes this spawn's parent and description. If it had been
    joined to another spawn by inference, that spawn is unlinked again and `spawned` goes on standing for it;
    if it was a ghost, `spawned` was the same agent all along and leaves without a flash."""
    other = (holder.tool_use_id, holder.parent_id, holder.description, holder.model, holder.background)
    holder.tool_use_id, holder.parent_id = spawned.tool_use_id, spawned.parent_id
    holder.description, holder.background = spawned.description, spawned.background
    holder.model = spawned.model or holder.model
    if other[0] is None or g.get(ctx.session, other[0]) is not None:
        # The same agent all along: viewers drop the stand-in without a flash (merged_into).
        return g.done(spawned, "unknown", ctx.ts, merged_into=holder.agent_id)
    spawned.tool_use_id, spawned.parent_id, spawned.description, spawned.model, spawned.background = other
    spawned.spawn_open = True
    return [g.rekey(spawned, other[0], ctx.ts, provisional=True)]


def _by_description(g: Graph, ctx: Ctx) -> Agent | None:
    """Before 2.0.43 there is no tool_use_id: pair PostToolUse(Task) with its spawn by description."""
    tool_input = ctx.payload.get("tool_input")
    description = g.text(tool_input.get("description")) if isinstance(tool_input, dict) else None
    spawns = [
        a
        for a in g.agents.values()
        if a.session_id == ctx.session and a.spawn_open and a.tool_use_id is None and a.description == description
    ]
    return min(spawns, key=lambda a: a.spawned_at) if spawns else None


def subagent_stop(g: Graph, ctx: Ctx, agent: Agent | None) -> list[Event]:
    """SubagentStop: ends its agent, or, when the id is unknown (or absent before 2.0.42), the oldest
    running spawn of the session with no real id yet, of the same type when the type is known."""
    out: list[Event] = []
    if agent is None:
        if ctx.agent_id != MAIN_AGENT and g.has_ended(ctx.session, ctx.agent_id):
            return []  # repeated stop (stop_hook_active, #83365) or a stop after the Agent tool returned
        raw_type = ctx.payload.get("agent_type")
        agent_type = (g.name(raw_type) or "") if isinstance(raw_type, str) else None
        spawn = g.unlinked(ctx.session, agent_type)
        if spawn is None:
            if agent_type:  # a real agent whose start we never saw: it shows, and ends
                ghost, out = first_sight(g, ctx, ctx.agent_id, agent_type)
                return out + g.done(
                    ghost, marker_outcome(ctx.payload.get("last_assistant_message")) or "unknown", ctx.ts
                )
            if ctx.agent_id != MAIN_AGENT:
                g.count("helper_agents")  # Claude Code's internal helpers: agent_type "" and nothing else
            return []
        agent = spawn
        if ctx.agent_id != MAIN_AGENT:
            agent.link = "inferred"
            out.append(g.rekey(agent, ctx.agent_id, ctx.ts))
    g.mark(agent, ctx.ts)
    outcome = marker_outcome(ctx.payload.get("last_assistant_message")) or "unknown"
    if agent.spawn_open and not agent.background:
        # Foreground: its PostToolUse(Agent) follows with status, tokens and duration; wait a little for it.
        agent.stopping_since = ctx.ts
        agent.stop_outcome = outcome
        return out
    return out + g.done(agent, outcome, ctx.ts)


def background_tasks(g: Graph, ctx: Ctx) -> list[Event]:
    """Stop.background_tasks (2.1.145+) ends agents whose SubagentStop never came (#92716)."""
    out: list[Event] = []
    tasks = ctx.payload.get("background_tasks")
    for task in tasks if isinstance(tasks, list) else []:
        if not isinstance(task, dict):
            continue
        status, task_id = text(task.get("status")), text(task.get("id"))
        agent = g.get(ctx.session, task_id) if task_id else None
        if agent is not None and status in FINISHED_BACKGROUND and agent.agent_id != MAIN_AGENT:
            out += g.done(agent, STATUS_OUTCOME.get(status or "", "unknown"), ctx.ts, reason="stop")
    return out
