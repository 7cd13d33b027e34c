"""Issue 8's cases, one per rule: sub-agents from their first sign to their end on every version and hook set,
joins by evidence, waiting for the person, busy agents kept alive. Each also checks that a viewer applying
the stream holds what the normalizer holds (the alive hash)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contract import MAIN_AGENT
from ingest.events import Limits, Normalizer
from ingest.pricing import Pricing
from ingest.redact import Redactor
from tests.mirror import Mirror, project

NOW = 1_800_000_000_000
reliability = pytest.mark.reliability
MIN = 60_000


class Session:
    """Feeds payloads of one session at chosen times and keeps a viewer's mirror of the stream."""

    def __init__(self, **limits: Any) -> None:
        self.norm = Normalizer(source="t", pricing=Pricing.load(), limits=Limits(**limits), redact=Redactor())
        self.mirror = Mirror()
        self.events: list[dict[str, Any]] = []
        self.counters: dict[str, int] = {}

    def _take(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.events += events
        self.mirror.apply_all(events)
        _, _, counters = self.norm.take_changes()
        for k, n in counters.items():
            self.counters[k] = self.counters.get(k, 0) + n
        alive = {k: project(a.record("t")) for k, a in self.norm.agents.items()}
        assert self.mirror.records == alive
        assert self.mirror.problems == []
        return events

    def feed(self, at: int, hook: str, **fields: Any) -> list[dict[str, Any]]:
        payload = {"session_id": "s1", "hook_event_name": hook, "_received_at": NOW + at, **fields}
        return self._take(self.norm.feed(payload, NOW + at))

    def expire(self, at: int) -> list[dict[str, Any]]:
        return self._take(self.norm.expire(NOW + at))

    def record(self, agent_id: str) -> dict[str, Any] | None:
        return self.mirror.records.get(f"s1/{agent_id}")

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


def spawn_input(kind: str = "general-purpose", description: str = "Fix the bug", **more: Any) -> dict[str, Any]:
    return {"description": description, "prompt": "p", "subagent_type": kind, **more}


@reliability(
    "Real Claude Code installs",
    "old Claude Code sub-agents",
    injected="Task with tool_use_id, no SubagentStart, no agent_id, SubagentStop without agent_id, PostToolUse(Task)",
    checked="the sub-agent drawn from its spawn, ended by its PostToolUse with the marker's outcome",
)
def test_old_claude_code_without_subagent_start_or_agent_ids_shows_the_sub_agent_from_its_spawn() -> None:
    # 2.0.4x: Task with tool_use_id, no SubagentStart, calls without agent_id, SubagentStop without agent_id.
    s = Session()
    s.feed(0, "PreToolUse", tool_name="Task", tool_use_id="tu1", tool_input=spawn_input("Explore", "Map it"))
    [spawn] = s.of("agent_spawn")
    assert (spawn["agent_id"], spawn["parent_id"], spawn["provisional"]) == ("tu1", MAIN_AGENT, True)
    s.feed(10, "PreToolUse", tool_name="Read", tool_use_id="r1")
    s.feed(20, "SubagentStop", stop_hook_active=False)
    assert s.record("tu1") is not None  # foreground: waits for its PostToolUse to bring the outcome
    final = "ok\n=== STATUS-TRUTH MARKER ===\nshipped: functional"
    s.feed(30, "PostToolUse", tool_name="Task", tool_use_id="tu1", tool_response={"content": [{"text": final}]})
    [done] = s.of("agent_done")
    assert (done["agent_id"], done["outcome"]) == ("tu1", "success")
    assert s.record("tu1") is None


@reliability(
    "Real Claude Code installs",
    "SubagentStop with an unknown agent_id",
    injected="2.0.50 shape: a Task spawn, SubagentStops with ids never seen, agent_type absent or empty",
    checked="the spawn re-keyed and ended with tokens; helpers counted in stats, never drawn; a repeated stop ignored",
)
def test_2_0_50_subagent_stop_with_unknown_id_ends_the_spawn_and_helpers_are_only_counted() -> None:
    s = Session()
    s.feed(0, "PreToolUse", tool_name="Task", tool_use_id="tu1", tool_input=spawn_input())
    s.feed(10, "SubagentStop", agent_id="a7", agent_transcript_path="/x/agent-a7.jsonl")
    [rekey] = s.of("agent_update")
    assert (rekey["previous_id"], rekey["agent_id"], rekey["link"]) == ("tu1", "a7", "inferred")
    response = {"status": "completed", "agentId": "a7", "usage": {"input_tokens": 1000}, "totalTokens": 1000}
    s.feed(20, "PostToolUse", tool_name="Task", tool_use_id="tu1", tool_response=response, tool_input={"model": "x"})
    [done] = s.of("agent_done")
    assert (done["agent_id"], done["outcome"], done["tokens"]) == ("a7", "success", 1000)
    # More stops with ids never seen and no spawn left: Claude Code's helpers, counted, not drawn.
    s.feed(30, "SubagentStop", agent_id="h1")
    s.feed(40, "SubagentStop", agent_id="h2", agent_type="")
    assert len(s.of("agent_spawn")) == 1 and s.counters == {"helper_agents": 2}
    s.feed(50, "SubagentStop", agent_id="a7", stop_hook_active=True)  # repeated: changes nothing
    assert len(s.of("agent_done")) == 1


@reliability(
    "Real Claude Code installs",
    "resolvedModel on a background agent",
    injected="PostToolUse(Agent) async_launched with resolvedModel after the spawn",
    checked="an agent_update carries the model: live pages recolour",
)
def test_resolved_model_recolours_a_live_background_agent() -> None:
    s = Session()
    s.feed(0, "PreToolUse", tool_name="Agent", tool_use_id="tu1", tool_input=spawn_input(run_in_background=True))
    assert s.record("tu1")["model"] is None  # type: ignore[index]
    response = {"status": "async_launched", "agentId": "bg", "resolvedModel": "claude-sonnet-4-5"}
    s.feed(10, "PostToolUse", tool_name="Agent", tool_use_id="tu1", tool_response=response)
    assert s.record("bg") == {**s.record("bg"), "model": "claude-sonnet-4-5", "background": True, "link": "confirmed"}  # type: ignore[dict-item]
    rekey, recolour = s.of("agent_update")
    assert (rekey["previous_id"], recolour["agent_id"], recolour["model"]) == ("tu1", "bg", "claude-sonnet-4-5")


@reliability(
    "Real Claude Code installs",
    "a parent waiting on a busy child",
    injected="a child busy for 2 hours (calls, one open 40 min) under a silent parent, idle timeout 30 min",
    checked="nothing ends while busy; then the idle subtree ends once as lost",
)
def test_a_parent_with_a_busy_child_outlives_the_idle_timeout_then_the_idle_subtree_ends_once() -> None:
    s = Session(idle_timeout_ms=30 * MIN)
    s.feed(0, "PreToolUse", tool_name="Agent", tool_use_id="tu1", tool_input=spawn_input(run_in_background=True))
    s.feed(
        1,
        "PostToolUse",
        tool_name="Agent",
        tool_use_id="tu1",
        tool_response={"status": "async_launched", "agentId": "p"},
    )
    s.feed(2, "PreToolUse", tool_name="Agent", tool_use_id="tu2", agent_id="p", agent_type="general-purpose",
           tool_input=spawn_input("Explore", run_in_background=True))  # fmt: skip
    launched = {"status": "async_launched", "agentId": "c"}
    s.feed(3, "PostToolUse", tool_name="Agent", tool_use_id="tu2", agent_id="p", agent_type="general-purpose",
           tool_response=launched)  # fmt: skip
    s.feed(4, "Stop")
    # The child keeps working for an hour; the parent and the orchestrator say nothing of their own.
    for minute in range(5, 65, 5):
        s.feed(
            minute * MIN, "PreToolUse", tool_name="Read", tool_use_id=f"r{minute}", agent_id="c", agent_type="Explore"
        )
        s.feed(
            minute * MIN + 1,
            "PostToolUse",
            tool_name="Read",
            tool_use_id=f"r{minute}",
            agent_id="c",
            agent_type="Explore",
        )
        assert s.expire(minute * MIN + 2) == []
    assert s.record("p") is not None and s.record("c") is not None
    # A call open for longer than the timeout keeps its agent alive too.
    s.feed(70 * MIN, "PreToolUse", tool_name="Bash", tool_use_id="long", agent_id="c", agent_type="Explore")
    assert s.expire(110 * MIN) == []
    s.feed(111 * MIN, "PostToolUse", tool_name="Bash", tool_use_id="long", agent_id="c", agent_type="Explore")
    ended = s.expire(142 * MIN)
    assert sorted((e["type"], e["agent_id"], e.get("outcome")) for e in ended) == [
        ("agent_done", "c", "lost"),
        ("agent_done", "p", "lost"),
        ("session_end", MAIN_AGENT, None),
    ]
    assert s.expire(200 * MIN) == [] and s.mirror.records == {}


@reliability(
    "Real Claude Code installs",
    "a long foreground agent",
    injected="a foreground sub-agent silent for 90 min, then its SubagentStop and PostToolUse",
    checked="not ended as lost; its cost priced at Opus 4.1 rates",
)
def test_a_long_foreground_agent_keeps_its_spawn_and_its_cost() -> None:
    s = Session(idle_timeout_ms=30 * MIN)
    s.feed(0, "PreToolUse", tool_name="Agent", tool_use_id="tu1", tool_input=spawn_input(model="opus"))
    s.feed(1, "SubagentStart", agent_id="fg", agent_type="general-purpose")
    assert s.expire(90 * MIN) == []  # silent for 90 minutes (no agent_id on its calls), its call still open
    usage = {"input_tokens": 1_000_000, "output_tokens": 0}
    response = {"status": "completed", "agentId": "fg", "resolvedModel": "claude-opus-4-1", "usage": usage}
    s.feed(91 * MIN, "SubagentStop", agent_id="fg", agent_type="general-purpose")
    s.feed(91 * MIN + 5, "PostToolUse", tool_name="Agent", tool_use_id="tu1", tool_response=response)
    [done] = s.of("agent_done")
    assert (done["agent_id"], done["outcome"], done["model"]) == ("fg", "success", "claude-opus-4-1")
    assert done["cost_usd"] == pytest.approx(15.0)  # Opus 4.1 input is $15/M, not the 4.5 family's $5


@reliability(
    "Real Claude Code installs",
    "wrong joins",
    injected="a stray Explore agent beside a reviewer spawn; two same-type spawns joined in the wrong order",
    checked="no join across types; the exact link corrects the inferred one, no node lost or doubled",
)
def test_joins_need_the_same_agent_type_and_the_exact_link_wins() -> None:
    s = Session()
    s.feed(0, "PreToolUse", tool_name="Agent", tool_use_id="rev", tool_input=spawn_input("reviewer", "Review"))
    # A stray Explore agent must not take the reviewer's spawn.
    s.feed(1, "PreToolUse", tool_name="Read", tool_use_id="x", agent_id="stray", agent_type="Explore")
    assert s.record("stray")["link"] == "none" and s.record("rev") is not None  # type: ignore[index]
    s.feed(2, "SubagentStart", agent_id="r1", agent_type="reviewer")
    assert s.record("r1")["description"] == "Review"  # type: ignore[index]

    # Two spawns of one type: the inferred join takes the oldest; the exact link corrects it.
    t = Session()
    t.feed(0, "PreToolUse", tool_name="Agent", tool_use_id="A", tool_input=spawn_input(description="first"))
    t.feed(1, "PreToolUse", tool_name="Agent", tool_use_id="B", tool_input=spawn_input(description="second"))
    t.feed(2, "SubagentStart", agent_id="b", agent_type="general-purpose")  # really B's
    assert t.record("b")["description"] == "first"  # type: ignore[index]
    t.feed(
        3, "PostToolUse", tool_name="Agent", tool_use_id="B", tool_response={"status": "async_launched", "agentId": "b"}
    )
    assert t.record("b")["description"] == "second" and t.record("b")["link"] == "confirmed"  # type: ignore[index]
    assert t.record("A")["description"] == "first" and t.record("A")["provisional"]  # type: ignore[index]
    assert len(t.mirror.records) == 3  # main, b, and A still waiting for its agent: no node lost or doubled


@reliability(
    "Real Claude Code installs",
    "waiting for you",
    injected="PermissionRequest from a sub-agent (answered, denied) and from the main thread; idle_prompt",
    checked="the right agent marked waiting with its tool, cleared by the Post or next call, waited_ms summed",
)
def test_permission_request_marks_the_agent_that_asked_and_times_the_wait() -> None:
    s = Session()
    s.feed(0, "PreToolUse", tool_name="Agent", tool_use_id="tu1", tool_input=spawn_input())
    s.feed(1, "SubagentStart", agent_id="a", agent_type="general-purpose")
    bash = {
        "tool_name": "Bash",
        "tool_input": {"command": "rm -rf build"},
        "agent_id": "a",
        "agent_type": "general-purpose",
    }
    s.feed(10, "PreToolUse", tool_use_id="b1", **bash)
    s.feed(20, "PermissionRequest", **bash, permission_suggestions=[])
    assert s.record("a")["waiting"] == "permission" and s.record("a")["waiting_tool"] == "Bash"  # type: ignore[index]
    s.feed(3020, "PostToolUse", tool_use_id="b1", **bash)
    assert s.record("a")["waiting"] is None and s.record("a")["waited_ms"] == 3000  # type: ignore[index]
    # Denied: no Post ever comes; the next call ends the wait.
    s.feed(4000, "PreToolUse", tool_use_id="b2", **bash)
    s.feed(4010, "PermissionRequest", **bash)
    s.feed(5010, "PreToolUse", tool_use_id="b3", **{**bash, "tool_name": "Read", "tool_input": {"file_path": "x"}})
    assert s.record("a")["waiting"] is None and s.record("a")["waited_ms"] == 4000  # type: ignore[index]
    # Without agent_id (before 2.1.69): the agent whose open call has that tool and input.
    s.feed(6000, "PreToolUse", tool_name="Write", tool_use_id="w1", tool_input={"file_path": "/a"})
    s.feed(6010, "PermissionRequest", tool_name="Write", tool_input={"file_path": "/a"})
    assert s.record(MAIN_AGENT)["waiting_tool"] == "Write"  # type: ignore[index]
    # idle_prompt: the orchestrator waits for input until the next prompt.
    s.feed(7000, "Notification", notification_type="idle_prompt", message="Claude is waiting for your input")
    assert s.record(MAIN_AGENT)["waiting"] == "input"  # type: ignore[index]
    s.feed(9000, "UserPromptSubmit", prompt="go on")
    assert s.record(MAIN_AGENT)["waiting"] is None  # type: ignore[index]


def test_a_notification_from_an_unknown_sub_agent_publishes_its_node() -> None:
    s = Session()
    s.feed(0, "Notification", agent_id="n1", agent_type="Explore", message="hi", notification_type="x")
    assert [e["agent_id"] for e in s.of("agent_spawn")] == ["n1"]
    assert s.record("n1") is not None and s.of("notification")[0]["agent_id"] == "n1"


def test_stop_failure_flashes_without_ending_and_compaction_shows() -> None:
    s = Session()
    s.feed(0, "UserPromptSubmit", prompt="x")
    s.feed(1, "StopFailure", error="rate_limit", error_details="429")
    assert [e["error"] for e in s.of("stop_fail")] == ["rate_limit"] and s.record(MAIN_AGENT) is not None
    s.feed(2, "PreCompact", trigger="auto")
    assert s.record(MAIN_AGENT)["compacting"] is True  # type: ignore[index]
    s.feed(3, "PostCompact", trigger="auto", compact_summary="...")
    assert s.record(MAIN_AGENT)["compacting"] is False  # type: ignore[index]


def test_every_published_string_is_capped() -> None:
    s = Session()
    long = "x" * 5000
    s.feed(0, "SessionStart", model=long, source=long)
    s.feed(1, "PreToolUse", tool_name="Skill", tool_use_id="k", tool_input={"skill": long})
    s.feed(2, "PreToolUse", tool_name="Agent", tool_use_id="t", tool_input=spawn_input(long, long, model=long))
    s.feed(3, "Notification", notification_type=long, message=long, title=long)
    s.feed(4, "SessionEnd", reason=long)
    for event in s.events:
        for value in event.values():
            assert not isinstance(value, str) or len(value) <= 200, (event["type"], len(value))
    assert json.dumps(s.events).count("x" * 201) == 0


def test_a_ghost_is_linked_to_its_spawn_by_the_agent_tool_s_result() -> None:
    # The PreToolUse(Agent) was lost (hook not registered at the time): the agent first shows as a ghost.
    s = Session()
    s.feed(0, "PreToolUse", tool_name="Agent", tool_use_id="outer", tool_input=spawn_input("planner"))
    s.feed(1, "SubagentStart", agent_id="o", agent_type="planner")
    s.feed(2, "PreToolUse", tool_name="Read", tool_use_id="r", agent_id="g", agent_type="Explore")
    assert s.record("g")["link"] == "none"  # type: ignore[index]
    response = {"status": "async_launched", "agentId": "g"}
    s.feed(
        3,
        "PostToolUse",
        tool_name="Agent",
        tool_use_id="lost",
        agent_id="o",
        agent_type="planner",
        tool_response=response,
    )
    assert s.record("g") == {**s.record("g"), "parent_id": "o", "link": "confirmed", "tool_use_id": "lost"}  # type: ignore[dict-item]


def test_an_agent_id_without_a_type_joins_only_an_unambiguous_spawn() -> None:
    # Some logging setups stamp "agent_id" on main-thread calls; with two spawns waiting nothing tells them apart.
    s = Session()
    s.feed(0, "PreToolUse", tool_name="Agent", tool_use_id="A", tool_input=spawn_input("x"))
    s.feed(1, "PreToolUse", tool_name="Agent", tool_use_id="B", tool_input=spawn_input("y"))
    s.feed(2, "PreToolUse", tool_name="Read", tool_use_id="r", agent_id="unknown")
    assert s.record("unknown")["link"] == "none" and s.record("A") and s.record("B")  # type: ignore[index]


def test_the_join_state_is_saved_by_change_and_restored_whole() -> None:
    s = Session()
    s.feed(0, "PreToolUse", tool_name="Read", tool_use_id="r1")
    s.feed(1, "PreToolUse", tool_name="Read", tool_use_id="odd\ud83d")  # a lone surrogate, as real payloads have
    first, gone = s.norm.state()
    assert sorted(first) == ["call:odd\\ud83d", "call:r1"] and gone == []
    s.feed(2, "PostToolUse", tool_name="Read", tool_use_id="r1")
    s.feed(3, "PreToolUse", tool_name="Bash", tool_use_id="b1")
    second, gone = s.norm.state()
    assert list(second) == ["call:b1"] and gone == ["call:r1"]  # only what changed
    saved = {**first, **second}
    for name in gone:
        del saved[name]
    restarted = Normalizer(source="t", pricing=Pricing.load(), redact=Redactor())
    restarted.restore(saved, [])
    assert restarted.graph.open_calls == s.norm.graph.open_calls
    for name in saved:
        name.encode()  # every field name is storable text
