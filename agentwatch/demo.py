"""A sample Claude Code session, written into the events file the way the hook writes it, at a human pace.

Shaped like the payloads in ../shared/reference/claude-code-hooks.md (Agent tool spawns, background sub-agents
with agent_id on their own tool calls, a failing Bash, a permission prompt, SubagentStop, SessionEnd), so a
newcomer sees the graph move without Claude Code.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from contract import SettingsError
from ingest.settings import DEFAULT_EVENTS_FILE

TEMP_PREFIX = "agentwatch-demo-"

TEAM = [
    ("Explore", "haiku", "claude-haiku-4-5", "Map the checkout module", ["Grep", "Read", "Read", "Glob", "Read"]),
    ("general-purpose", "sonnet", "claude-sonnet-4-5", "Run the test suite", ["Bash", "Read", "Bash", "Edit"]),
    ("security-reviewer", "opus", "claude-opus-4-5", "Security review", ["Grep", "Read", "WebFetch", "Read"]),
    ("docs-writer", "sonnet", "claude-sonnet-4-5", "Draft the changelog", ["Read", "Write", "Read"]),
]
PROJECTS = ("acme-shop", "billing-api", "docs-site", "mobile-app")
NESTED = ("Explore", "haiku", "claude-haiku-4-5", "Find webhook handlers", ["Grep", "Read"])


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


TRANSCRIPT = "__transcript__"  # a script item that is a transcript line (file, text), not a hook payload


def _response(rng: random.Random, session: str, path: Path, model: str, agent_id: str | None) -> dict[str, Any]:
    """One API response as Claude Code writes it to a transcript: a placeholder line, then the final one."""
    msg, request = _id("msg_"), _id("req_")
    usage = {
        "input_tokens": rng.randint(3, 12),
        "output_tokens": rng.randint(80, 900),
        "cache_read_input_tokens": rng.randint(8_000, 60_000),
        "cache_creation_input_tokens": (write := rng.randint(300, 3_000)),
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": write},
    }
    lines = []
    for final in (False, True):
        entry = {
            "type": "assistant",
            "sessionId": session,
            "isSidechain": agent_id is not None,
            "message": {
                "id": msg,
                "model": model,
                "role": "assistant",
                "content": [{"type": "text", "text": "Looking into it."}],
                "stop_reason": "tool_use" if final else None,
                "usage": usage if final else {**usage, "output_tokens": 1},
            },
            "requestId": request,
            "uuid": str(uuid.uuid4()),
            **({"agentId": agent_id} if agent_id else {}),
        }
        lines.append(json.dumps(entry, separators=(",", ":")) + "\n")
    return {TRANSCRIPT: (str(path), "".join(lines))}


def session_script(rng: random.Random, transcripts: Path | None = None) -> Iterator[tuple[float, dict[str, Any]]]:
    """(delay in seconds before it, payload) for one whole session. With `transcripts` (a folder), also the
    transcript lines Claude Code would write there, so tokens and cost show live."""
    session = str(uuid.uuid4())
    project = rng.choice(PROJECTS)
    folder = transcripts or Path("/nonexistent-agentwatch-demo")
    main_file = folder / f"{session}.jsonl"
    base = {"session_id": session, "cwd": f"/home/demo/{project}", "transcript_path": str(main_file)}
    models: dict[str | None, str] = {None: "claude-opus-4-5"}

    def hook(name: str, **fields: Any) -> dict[str, Any]:
        return {**base, "hook_event_name": name, **fields}

    def think(agent_id: str | None) -> Iterator[tuple[float, dict[str, Any]]]:
        if transcripts is not None:
            path = main_file if agent_id is None else folder / session / "subagents" / f"agent-{agent_id}.jsonl"
            yield 0.0, _response(rng, session, path, models.get(agent_id, "claude-sonnet-4-5"), agent_id)

    yield 0.2, hook("SessionStart", source="startup", model="claude-opus-4-5")
    yield 1.0, hook("UserPromptSubmit", prompt="Audit the checkout module with parallel agents.")
    yield from think(None)
    members = rng.sample(TEAM, k=rng.randint(2, len(TEAM)))
    agents: list[tuple[str, tuple[str, str, str, str, list[str]]]] = []
    for member in members:
        agent_type, alias, _model, description, _tools = member
        tool_use_id = _id("toolu_")
        agent_id = uuid.uuid4().hex[:16]
        models[agent_id] = member[2]
        tool_input = {"description": description, "prompt": description, "subagent_type": agent_type, "model": alias}
        yield from think(None)
        yield 0.4, hook("PreToolUse", tool_name="Agent", tool_input=tool_input, tool_use_id=tool_use_id)
        yield 0.1, hook("SubagentStart", agent_id=agent_id, agent_type=agent_type)
        response = {"status": "async_launched", "agentId": agent_id, "resolvedModel": member[2]}
        yield (
            0.1,
            hook(
                "PostToolUse", tool_name="Agent", tool_input=tool_input, tool_use_id=tool_use_id, tool_response=response
            ),
        )
        agents.append((agent_id, member))
    # The sub-agents work in parallel: interleave their tool calls.
    queues = {agent_id: list(member[4]) for agent_id, member in agents}
    types = {agent_id: member[0] for agent_id, member in agents}
    nested_done = False
    while any(queues.values()):
        agent_id = rng.choice([a for a, q in queues.items() if q])
        tool = queues[agent_id].pop(0)
        tool_use_id = _id("toolu_")
        who = {"agent_id": agent_id, "agent_type": types[agent_id]}
        yield from think(agent_id)
        yield rng.uniform(0.2, 0.9), hook("PreToolUse", tool_name=tool, tool_input={}, tool_use_id=tool_use_id, **who)
        if tool == "WebFetch":
            yield (
                0.5,
                hook(
                    "Notification",
                    message="Claude needs your permission to use Fetch",
                    notification_type="permission_prompt",
                ),
            )
            yield (
                2.5,
                hook("PostToolUse", tool_name=tool, tool_input={}, tool_use_id=tool_use_id, tool_response={}, **who),
            )
        elif tool == "Bash" and rng.random() < 0.5:
            yield (
                rng.uniform(0.5, 1.5),
                hook(
                    "PostToolUseFailure",
                    tool_name=tool,
                    tool_input={},
                    tool_use_id=tool_use_id,
                    error="Exit code 1",
                    **who,
                ),
            )
        else:
            yield (
                rng.uniform(0.1, 0.6),
                hook("PostToolUse", tool_name=tool, tool_input={}, tool_use_id=tool_use_id, tool_response={}, **who),
            )
        if not nested_done and types[agent_id] == "security-reviewer":
            nested_done = True
            yield from _nested(hook, agent_id, types[agent_id], rng)
        if not queues[agent_id]:
            yield from think(agent_id)  # its last answer
        if not queues[agent_id]:
            status = rng.choice(["functional", "functional", "partial", "no"])
            last = f"Done.\n=== STATUS-TRUTH MARKER ===\nshipped: {status}\n"
            yield 0.3, hook("SubagentStop", agent_id=agent_id, agent_type=types[agent_id], last_assistant_message=last)
    yield from think(None)
    yield 0.8, hook("PreToolUse", tool_name="Write", tool_input={}, tool_use_id=(t := _id("toolu_")))
    yield 0.2, hook("PostToolUse", tool_name="Write", tool_input={}, tool_use_id=t, tool_response={})
    yield 0.5, hook("Stop", stop_hook_active=False, background_tasks=[])
    yield 1.5, hook("SessionEnd", reason="prompt_input_exit")


def _nested(hook: Any, parent: str, parent_type: str, rng: random.Random) -> Iterator[tuple[float, dict[str, Any]]]:
    """A sub-agent spawning its own sub-agent: the branch grows from the parent, not from main."""
    agent_type, alias, model, description, tools = NESTED
    tool_use_id, agent_id = _id("toolu_"), uuid.uuid4().hex[:16]
    tool_input = {"description": description, "prompt": description, "subagent_type": agent_type, "model": alias}
    who = {"agent_id": parent, "agent_type": parent_type}
    yield 0.3, hook("PreToolUse", tool_name="Agent", tool_input=tool_input, tool_use_id=tool_use_id, **who)
    yield 0.1, hook("SubagentStart", agent_id=agent_id, agent_type=agent_type)
    for tool in tools:
        inner = _id("toolu_")
        me = {"agent_id": agent_id, "agent_type": agent_type}
        yield rng.uniform(0.3, 0.8), hook("PreToolUse", tool_name=tool, tool_input={}, tool_use_id=inner, **me)
        yield 0.2, hook("PostToolUse", tool_name=tool, tool_input={}, tool_use_id=inner, tool_response={}, **me)
    yield (
        0.2,
        hook("SubagentStop", agent_id=agent_id, agent_type=agent_type, last_assistant_message="Found 2 handlers."),
    )
    response = {
        "status": "completed",
        "agentId": agent_id,
        "resolvedModel": model,
        "totalTokens": 18250,
        "usage": {"input_tokens": 15000, "output_tokens": 3250},
        "totalDurationMs": 4200,
    }
    yield (
        0.1,
        hook(
            "PostToolUse",
            tool_name="Agent",
            tool_input=tool_input,
            tool_use_id=tool_use_id,
            tool_response=response,
            **who,
        ),
    )


def events_file(argv: Sequence[str], configured: Path) -> Path:
    """Where the demo plays: never the file Claude Code's hook writes, which a real ingest on a shared Redis
    would publish as if the invented sessions were real. A temporary file, unless --events-file names one."""
    given = any(a == "--events-file" or a.startswith("--events-file=") for a in argv)
    real = {Path(os.path.expanduser(DEFAULT_EVENTS_FILE)).absolute()}
    if os.environ.get("AGENTWATCH_EVENTS_FILE"):
        real.add(Path(os.path.expanduser(os.environ["AGENTWATCH_EVENTS_FILE"])).absolute())
    if not given:
        return Path(tempfile.mkdtemp(prefix=TEMP_PREFIX)) / "events.jsonl"
    if configured.absolute() in real:
        raise SettingsError(
            f"--events-file has value {str(configured)!r}, the file your Claude Code hook writes: --demo plays "
            "invented sessions, so give it another file, or no --events-file for a temporary one"
        )
    return configured


def remove_temporary(path: Path) -> None:
    """Remove the demo's temporary folder (and only that)."""
    if path.parent.name.startswith(TEMP_PREFIX) and path.parent.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(path.parent, ignore_errors=True)


def _append(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def append_line(path: Path, payload: dict[str, Any]) -> None:
    """As the hook does: stamp the time, one line, one write() on an O_APPEND descriptor."""
    line = json.dumps({"_received_at": int(time.time() * 1000), **payload}, separators=(",", ":")) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


async def play(path: Path, stop: asyncio.Event, speed: float = 1.0, sessions: int = 2, seed: int | None = None) -> None:
    """Play overlapping sessions into `path` until stop is set."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)

    async def one_after_another(offset: float) -> None:
        await asyncio.sleep(offset)
        while not stop.is_set():
            for delay, payload in session_script(rng, path.parent / "projects"):
                try:
                    await asyncio.wait_for(stop.wait(), delay / speed)
                    return
                except TimeoutError:
                    if TRANSCRIPT in payload:
                        _append(*payload[TRANSCRIPT])
                    else:
                        append_line(path, payload)
            await asyncio.sleep(1.0 / speed)

    await asyncio.gather(*(one_after_another(i * 4.0 / speed) for i in range(sessions)))
