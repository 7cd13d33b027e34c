"""Tokens and cost per agent: transcript usage put on the agents it belongs to, and kept when they end.

An agent's `usage` is its own responses; `sub_usage` collects its descendants' once they end (and sub-agent
turns written inline in the session file, which name no agent). So the subtree total a viewer shows for an
agent is its usage, plus its sub_usage, plus the subtree totals of its alive children: ending a child moves
its figures up, never counts them twice. Without a readable transcript, a sub-agent ends with the Agent
tool's usage (`basis: "floor"`, its final request only).
"""

from __future__ import annotations

from typing import Any

from contract import MAIN_AGENT, alive_field

from .agent import Agent
from .graph import Ctx, Graph
from .transcripts import SIDECHAIN, Followed, Transcripts
from .usage import Usage, add


def follow_payload(t: Transcripts, ctx: Ctx) -> None:
    """The files a payload names: the session's own, and a sub-agent's at its SubagentStop."""
    if ctx.session not in t.sessions:
        t.follow(ctx.payload.get("transcript_path"), ctx.session, MAIN_AGENT)
    if ctx.hook == "SubagentStop" and ctx.agent_id != MAIN_AGENT:
        t.follow(ctx.payload.get("agent_transcript_path"), ctx.session, ctx.agent_id)


def poll(g: Graph, t: Transcripts, now_ms: int) -> None:
    """Read what was written since the last pass (each file at most once a second) and put it on its agents;
    look for the files of running sub-agents not found yet."""
    for key, agent in g.agents.items():
        if agent.agent_id != MAIN_AGENT and not agent.provisional and not t.has_own(agent.session_id, agent.agent_id):
            t.look_for(agent.session_id, agent.agent_id, key, now_ms)
    for followed in t.due(now_ms):
        _read(g, t, followed, now_ms)


def settle(g: Graph, t: Transcripts, agent: Agent, ts: int) -> None:
    """An agent ends: read its file once more, move its figures to its heir's sub_usage (its parent, or the
    orchestrator), and send what its file still gets there for a grace period (its last lines land late)."""
    key = alive_field(agent.session_id, agent.agent_id)
    if agent.agent_id != MAIN_AGENT and not agent.provisional:
        if not t.has_own(agent.session_id, agent.agent_id):
            t.looked.pop(key, None)  # look now, whenever it was last looked for
            t.look_for(agent.session_id, agent.agent_id, key, ts)
        for followed in t.of(agent.session_id, agent.agent_id):
            if followed.target is None:
                _read(g, t, followed, ts)
    heir = _heir(g, agent)
    total = add(agent.usage, agent.sub_usage)
    if heir is not None and total is not None:
        heir.sub_usage = add(heir.sub_usage, {k: v for k, v in total.items() if k != "basis"})
        g.mark(heir)
    target = alive_field(heir.session_id, heir.agent_id) if heir is not None else None
    for followed in [*t.of(agent.session_id, agent.agent_id), *t.targeting(key)]:
        t.ended(followed, target, ts)
    t.looked.pop(key, None)


def floor_if_unread(agent: Agent, floor: Usage | None) -> None:
    """The Agent tool's usage stands for an agent none of whose transcript lines were read."""
    if agent.usage is None or agent.usage.get("basis") == "floor":
        agent.usage = floor


def _read(g: Graph, t: Transcripts, followed: Followed, now_ms: int) -> None:
    for owner, line in t.read(followed, now_ms):
        counted = t.ledger.count(owner, followed.session, line)
        if counted is None:
            continue
        owner_path, delta = counted
        source = t.files.get(owner_path.removesuffix(SIDECHAIN))
        if source is not None:
            _apply(g, source, delta, inline=owner_path.endswith(SIDECHAIN))


def _apply(g: Graph, source: Followed, delta: Usage, inline: bool) -> None:
    agent = None if source.target is not None else g.get(source.session, source.agent_id)
    if agent is not None and not inline:
        mine: dict[str, Any] | None = agent.usage if (agent.usage or {}).get("basis") == "transcript" else None
        agent.usage = add(mine or {"basis": "transcript"} | _zero(), delta)
        g.mark(agent)
        return
    # An ended agent's late lines, or an inline sub-agent turn: its heir's (or its session's) subtree.
    heir = g.agents.get(source.target) if source.target else agent or g.main(source.session)
    if heir is not None:
        heir.sub_usage = add(heir.sub_usage, delta)
        g.mark(heir)


def _heir(g: Graph, agent: Agent) -> Agent | None:
    """Its parent, or the orchestrator when the parent ended first; None for the orchestrator itself."""
    if agent.agent_id == MAIN_AGENT:
        return None
    return g.get(agent.session_id, agent.parent_id or MAIN_AGENT) or g.main(agent.session_id)


def _zero() -> Usage:
    return {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0, "messages": 0, "cost_usd": 0.0}
