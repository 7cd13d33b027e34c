"""Waiting for you: permission dialogs and idle prompts, marked on the agent that waits and timed.

PermissionRequest (2.1.42+) is the exact signal: it names the tool and, inside a sub-agent, the agent. It has
no tool_use_id, so it is paired with the open call of the same tool and input. The mark clears when that
call proceeds or fails, at the agent's next call (a denied call gets no Post at all), or when the agent
ends. Notification `permission_prompt` is the older, vaguer signal; `idle_prompt` marks the orchestrator as
waiting for input. Each agent's finished waits add up in `waited_ms`.
"""

from __future__ import annotations

import re

from contract import MAIN_AGENT

from .agent import Agent, call_key
from .graph import Ctx, Event, Graph

PERMISSION_RE = re.compile(r"permission to use (\S+)")


def set_waiting(g: Graph, agent: Agent, kind: str, tool: str | None, ts: int, call: str | None = None) -> None:
    if agent.waiting == kind and (agent.waiting_tool == tool or tool is None):
        return  # the same dialog told twice (PermissionRequest, then its Notification)
    if agent.waiting is not None:
        clear_waiting(g, agent, ts)
    agent.waiting, agent.waiting_tool, agent.waiting_since, agent.waiting_call = kind, tool, ts, call
    g.mark(agent, ts)


def clear_waiting(g: Graph, agent: Agent, ts: int) -> None:
    if agent.waiting is None:
        return
    if agent.waiting_since is not None:
        agent.waited_ms += max(0, ts - agent.waiting_since)
    agent.waiting = agent.waiting_tool = agent.waiting_since = agent.waiting_call = None
    g.mark(agent)


def before_call(g: Graph, agent: Agent, ts: int) -> None:
    """The agent moves on: whatever it waited for is over; a call still waiting on a dialog was denied."""
    if agent.waiting is None:
        return
    if agent.waiting_call is not None:
        g.open_calls.pop(agent.waiting_call, None)
    clear_waiting(g, agent, ts)


def after_call(g: Graph, agent: Agent, tool_use_id: str | None, tool: str, ts: int) -> None:
    """A call proceeded or failed: if it was the one the dialog asked about, the person answered."""
    if agent.waiting != "permission":
        return
    if agent.waiting_call == tool_use_id if agent.waiting_call is not None else agent.waiting_tool == tool:
        clear_waiting(g, agent, ts)


def permission_request(g: Graph, ctx: Ctx, asker: Agent | None) -> list[Event]:
    """The dialog's agent: its agent_id, else the agent whose open call has that tool and input."""
    tool = g.name(ctx.payload.get("tool_name"))
    key = call_key(ctx.payload.get("tool_input"))
    calls = [
        (v.ts, v.key == key, call_id, str(v.agent_id))
        for call_id, v in g.open_calls.items()
        if v.session_id == ctx.session and v.tool == tool and (asker is None or v.agent_id == asker.agent_id)
    ]
    # Same input first, then the newest call.
    best = max(calls, key=lambda c: (c[1], c[0])) if calls else None
    agent = asker or (g.get(ctx.session, best[3]) if best else None) or g.main(ctx.session)
    if agent is None:
        return []
    set_waiting(g, agent, "permission", tool, ctx.ts, best[2] if best and best[3] == agent.agent_id else None)
    return [g.event("permission_request", ctx.ts, ctx.session, agent.agent_id, tool=tool)]


def notification(g: Graph, ctx: Ctx, sender: Agent | None) -> list[Event]:
    kind = g.name(ctx.payload.get("notification_type")) or "notification"
    message = g.text(ctx.payload.get("message"))
    agent = sender
    if kind == "idle_prompt":
        agent = g.main(ctx.session)
        if agent is not None:
            set_waiting(g, agent, "input", None, ctx.ts)
    elif kind == "permission_prompt" or (kind == "notification" and message and PERMISSION_RE.search(message)):
        # Older Claude Code: no PermissionRequest, and the prompt names the tool only in its message.
        tool = _prompted_tool(message)
        if agent is None:
            agent = _caller_of(g, ctx.session, tool) or g.main(ctx.session)
        if agent is not None and agent.waiting is None:
            set_waiting(g, agent, "permission", _tool_name(g, agent, tool), ctx.ts)
    agent_id = agent.agent_id if agent is not None else MAIN_AGENT
    return [
        g.event(
            "notification",
            ctx.ts,
            ctx.session,
            agent_id,
            notification_type=kind,
            message=message,
            title=g.text(ctx.payload.get("title")),
        )
    ]


def _prompted_tool(message: str | None) -> str | None:
    match = PERMISSION_RE.search(message or "")
    return match.group(1).strip(".,:;").lower() if match else None


def _caller_of(g: Graph, session: str, tool: str | None) -> Agent | None:
    """The one agent with an open call of the tool the prompt names ("Fetch" names WebFetch)."""
    if tool is None:
        return None
    agents = {
        str(v.agent_id) for v in g.open_calls.values() if v.session_id == session and str(v.tool).lower().endswith(tool)
    }
    return g.get(session, agents.pop()) if len(agents) == 1 else None


def _tool_name(g: Graph, agent: Agent, prompted: str | None) -> str | None:
    """The real tool name of the agent's open call the prompt names, else the prompt's word."""
    if prompted is None:
        return None
    for v in g.open_calls.values():
        if v.session_id == agent.session_id and v.agent_id == agent.agent_id and str(v.tool).lower().endswith(prompted):
            return str(v.tool)
    return prompted
