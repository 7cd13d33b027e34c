"""Sessions and their lifetimes: start, turns, compaction, failures, the end, and idleness.

Idleness looks at whole subtrees: an agent with an open call, a running spawn call or a live descendant is
busy, not idle. The idle timeout ends only a subtree in which nothing happened for that long, once, as
`lost` (a whole idle session ends with `session_end` reason `idle`).
"""

from __future__ import annotations

from collections import defaultdict

from contract import MAIN_AGENT, alive_field

from .agent import Agent, project_of
from .graph import Ctx, Event, Graph
from .spawns import background_tasks
from .tools import close_turn
from .waiting import clear_waiting


def ensure_session(g: Graph, ctx: Ctx) -> list[Event]:
    """Every session has its orchestrator node, from its first event of any kind."""
    main = g.main(ctx.session)
    if main is not None:
        g.touch(main, ctx.ts)
        return []
    model = g.name(ctx.payload.get("model")) if ctx.hook == "SessionStart" else None
    main = Agent(ctx.session, MAIN_AGENT, None, "main", model, None, None, ctx.ts, ctx.ts)
    main.project = g.name(project_of(ctx.payload.get("cwd")))
    return [g.add(main, "session_start")]


def session_start(g: Graph, ctx: Ctx) -> list[Event]:
    main = g.main(ctx.session)
    if main is not None:
        main.model = g.name(ctx.payload.get("model")) or main.model
        main.compacting = False  # SessionStart with source "compact" follows a compaction
        g.mark(main)
    return []


def prompt(g: Graph, ctx: Ctx) -> list[Event]:
    main = g.main(ctx.session)
    value = ctx.payload.get("prompt")
    if main is not None:
        clear_waiting(g, main, ctx.ts)
        if main.compacting:
            main.compacting = False
        main.prompts += 1
        if g.details:
            main.asked = g.first_line(value)
        g.mark(main)
        close_turn(g, ctx.session, MAIN_AGENT)
    size = len(value) if isinstance(value, str) else None
    extra = {"prompt": g.text(value, 300)} if g.details else {}
    return [g.event("prompt", ctx.ts, ctx.session, MAIN_AGENT, prompt_chars=size, **extra)]


def stop(g: Graph, ctx: Ctx) -> list[Event]:
    """Stop ends a turn, not the session; its background_tasks can end agents whose SubagentStop never came."""
    if ctx.agent_id == MAIN_AGENT:
        close_turn(g, ctx.session, MAIN_AGENT)
        main = g.main(ctx.session)
        if main is not None and main.compacting:
            main.compacting = False
            g.mark(main)
    return background_tasks(g, ctx)


def stop_failure(g: Graph, ctx: Ctx, agent: Agent) -> list[Event]:
    """StopFailure (rate limit, overload): a failure flash on the agent; nothing ends."""
    error = g.name(ctx.payload.get("error")) or "error"
    details = g.text(ctx.payload.get("error_details"))
    return [g.event("stop_fail", ctx.ts, ctx.session, agent.agent_id, error=error, message=details)]


def compaction(g: Graph, ctx: Ctx, starting: bool) -> list[Event]:
    main = g.main(ctx.session)
    if main is not None and main.compacting != starting:
        main.compacting = starting
        g.mark(main)
    trigger = g.name(ctx.payload.get("trigger"))
    kind = "compact_start" if starting else "compact_done"
    return [g.event(kind, ctx.ts, ctx.session, MAIN_AGENT, trigger=trigger)]


def session_end(g: Graph, ctx: Ctx) -> list[Event]:
    return g.end_session(ctx.session, ctx.ts, g.name(ctx.payload.get("reason")) or "other")


def expire(g: Graph, now_ms: int) -> list[Event]:
    """End what nothing will end: foreground stops whose PostToolUse never came, and idle subtrees."""
    out: list[Event] = []
    grace_before = now_ms - g.limits.stop_grace_ms
    for agent in [a for a in g.agents.values() if a.stopping_since is not None and a.stopping_since <= grace_before]:
        out += g.done(agent, agent.stop_outcome, now_ms)
    abandoned_before = now_ms - g.limits.open_call_ms
    for call_id in [k for k, v in g.open_calls.items() if v.ts < abandoned_before]:
        del g.open_calls[call_id]
    idle_before = now_ms - g.limits.idle_timeout_ms
    children = _children(g)
    active = _active_subtrees(g, idle_before, children)
    for agent in list(g.agents.values()):
        key = alive_field(agent.session_id, agent.agent_id)
        if key in active or key not in g.agents:
            continue
        if agent.agent_id == MAIN_AGENT:
            out += g.end_session(agent.session_id, now_ms, "idle")
            continue
        parent = g.get(agent.session_id, agent.parent_id or MAIN_AGENT) or g.main(agent.session_id)
        if parent is None or alive_field(parent.session_id, parent.agent_id) in active:
            out += _end_subtree(g, agent, now_ms, children)
    return out


def _children(g: Graph) -> dict[str, list[Agent]]:
    """Each alive agent's alive children; an agent whose parent is gone hangs from its orchestrator."""
    children: dict[str, list[Agent]] = defaultdict(list)
    for agent in g.agents.values():
        if agent.agent_id == MAIN_AGENT:
            continue
        parent = agent.parent_id if g.get(agent.session_id, agent.parent_id or MAIN_AGENT) else MAIN_AGENT
        children[alive_field(agent.session_id, parent or MAIN_AGENT)].append(agent)
    return children


def _active_subtrees(g: Graph, idle_before: int, children: dict[str, list[Agent]]) -> set[str]:
    busy = {alive_field(v.session_id, v.agent_id) for v in g.open_calls.values()}
    active: set[str] = set()
    done: set[str] = set()

    def visit(agent: Agent) -> bool:
        key = alive_field(agent.session_id, agent.agent_id)
        if key in done:
            return key in active
        done.add(key)  # before the children: a parent cycle cannot recurse forever
        # A running spawn call (foreground sub-agent) is busy; open calls age out after Limits.open_call_ms.
        own = agent.last_seen >= idle_before or key in busy or agent.tool_use_id in g.open_calls
        below = [visit(child) for child in children.get(key, [])]
        if own or any(below):
            active.add(key)
        return key in active

    for agent in list(g.agents.values()):
        visit(agent)
    return active


def _end_subtree(g: Graph, agent: Agent, now_ms: int, children: dict[str, list[Agent]]) -> list[Event]:
    out: list[Event] = []
    for child in children.get(alive_field(agent.session_id, agent.agent_id), []):
        out += _end_subtree(g, child, now_ms, children)
    if alive_field(agent.session_id, agent.agent_id) in g.agents:
        out += g.done(agent, "lost", now_ms, reason="idle")
    return out
