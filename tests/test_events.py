"""The normalizer: raw hook payloads -> agentwatch events, and the alive set they leave."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import EVENT_TYPES, MAIN_AGENT, OUTCOMES
from ingest.events import Limits, Normalizer, Rejected
from ingest.pricing import Pricing
from ingest.redact import Redactor
from tests.mirror import Mirror
from tests.stack import fixture_payloads

SESSION = "7f3c2a91-5b6e-4d0a-9c1e-2f8b4a6d3e17"
EXPLORE, TESTER, REVIEWER = "a3f9c1d27b84e065", "a71be0c94d2f5a38", "ac52d8e6f1097b4a"
NOW = 1_800_000_000_000

reliability = pytest.mark.reliability


def normalizer(**limits: Any) -> Normalizer:
    return Normalizer(source="test", pricing=Pricing.load(), limits=Limits(**limits), redact=Redactor())


def feed_all(norm: Normalizer, payloads: list[dict[str, Any]], start: int = NOW) -> list[dict[str, Any]]:
    events = []
    for i, payload in enumerate(payloads):
        payload = {"_received_at": start + i * 10, **payload}
        events += norm.feed(payload, start + i * 10)
    return events


def spawned(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each agent_spawn, under the id its node ends up with after re-keys (the page's view)."""
    mirror = Mirror().apply_all(events)
    return {mirror.final_id(e["session_id"], e["agent_id"]): e for e in events if e["type"] == "agent_spawn"}


def fixture() -> list[dict[str, Any]]:
    return [json.loads(p) for p in fixture_payloads()]


def test_fixture_session_gives_the_graph() -> None:
    norm = normalizer()
    events = feed_all(norm, fixture())
    assert {e["type"] for e in events} <= EVENT_TYPES
    spawns = spawned(events)
    assert [(k, e["agent_type"], e["model"], e["parent_id"]) for k, e in spawns.items()] == [
        (EXPLORE, "Explore", "haiku", MAIN_AGENT),
        (TESTER, "general-purpose", "sonnet", MAIN_AGENT),
        (REVIEWER, "security-reviewer", "opus", MAIN_AGENT),
    ]
    assert [e["tool_use_id"] for e in spawns.values()] == [
        "toolu_01Ve4Gk9ZrA2nL7cX5pT3Hw8",
        "toolu_01Bq8Ns3YtL6dF1wR9mK4Pz2",
        "toolu_01Kx2Tm7WcJ5hR8vB3nQ6Ly9",
    ]
    assert spawns[EXPLORE]["description"] == "Map checkout module"
    assert all(e["provisional"] for e in spawns.values())  # drawn at the spawn call, before their ids are known


def test_every_tool_call_is_attributed_to_the_agent_that_made_it() -> None:
    payloads = fixture()
    events = feed_all(normalizer(), payloads)
    expected = {
        p["tool_use_id"]: p.get("agent_id", MAIN_AGENT) for p in payloads if p["hook_event_name"] == "PreToolUse"
    }
    seen = {e["tool_use_id"]: e["agent_id"] for e in events if e["type"] == "tool_use"}
    assert seen == expected
    assert seen["toolu_01Wn5Ra8PzC3kV7yD2tM9Gb4"] == EXPLORE  # a Grep inside the Explore sub-agent, not main


def test_failing_tool_and_session_end_leave_nothing_alive() -> None:
    norm = normalizer()
    events = feed_all(norm, fixture())
    fails = [e for e in events if e["type"] == "tool_fail"]
    assert [(e["agent_id"], e["tool"], e["error"]) for e in fails] == [(TESTER, "Bash", "Exit code 1")]
    done = {e["agent_id"]: e for e in events if e["type"] == "agent_done"}
    assert set(done) == {EXPLORE, TESTER, REVIEWER}
    assert all(e["outcome"] in OUTCOMES for e in done.values())
    assert events[-1]["type"] == "session_end"
    assert norm.agents == {}


def test_permission_prompt_is_pinned_on_the_waiting_agent() -> None:
    events = feed_all(normalizer(), fixture())
    [note] = [e for e in events if e["type"] == "notification"]
    assert note["notification_type"] == "permission_prompt"
    assert note["agent_id"] == REVIEWER  # its WebFetch is the open call the prompt names ("Fetch")


def test_alive_records_during_the_session() -> None:
    norm = normalizer()
    feed_all(norm, fixture()[:20])
    sets, dels, _ = norm.take_changes()
    # The stand-in ids the three spawns were drawn under, gone now that their real ids are known.
    assert dels == sorted(f"{SESSION}/{p['tool_use_id']}" for p in fixture()[6:9])
    records = {k: json.loads(v) for k, v in sets.items()}
    assert set(records) == {f"{SESSION}/{a}" for a in (MAIN_AGENT, EXPLORE, TESTER, REVIEWER)}
    explore = records[f"{SESSION}/{EXPLORE}"]
    assert explore["parent_id"] == MAIN_AGENT
    assert explore["model"] == "claude-haiku-4-5"  # resolvedModel from PostToolUse(Agent) wins over the alias
    assert explore["background"] is True
    assert explore["tool_count"] == 2


def agent_call(tool_use_id: str, **tool_input: Any) -> dict[str, Any]:
    base = {"description": "Fix the bug", "prompt": "p", "subagent_type": "general-purpose"}
    return {
        "session_id": "s1",
        "hook_event_name": "PreToolUse",
        "tool_name": "Agent",
        "tool_use_id": tool_use_id,
        "tool_input": {**base, **tool_input},
    }


def test_foreground_agent_ends_with_status_tokens_and_cost_from_its_tool_response() -> None:
    norm = normalizer()
    final = "All done.\n=== STATUS-TRUTH MARKER ===\nshipped: partial\nnotes: flaky test left"
    payloads = [
        agent_call("tu1", model="sonnet"),
        {"session_id": "s1", "hook_event_name": "SubagentStart", "agent_id": "ag1", "agent_type": "general-purpose"},
        {
            "session_id": "s1",
            "hook_event_name": "PreToolUse",
            "tool_name": "Edit",
            "tool_use_id": "tu2",
            "agent_id": "ag1",
        },
        {"session_id": "s1", "hook_event_name": "SubagentStop", "agent_id": "ag1", "last_assistant_message": final},
        {
            "session_id": "s1",
            "hook_event_name": "PostToolUse",
            "tool_name": "Agent",
            "tool_use_id": "tu1",
            "tool_response": {
                "status": "completed",
                "agentId": "ag1",
                "resolvedModel": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": final}],
                "totalTokens": 3000,
                "totalDurationMs": 4000,
                "usage": {"input_tokens": 1_000_000, "output_tokens": 100_000},
            },
        },
    ]
    events = feed_all(norm, payloads)
    [done] = [e for e in events if e["type"] == "agent_done"]
    assert done["agent_id"] == "ag1"
    assert done["outcome"] == "partial"
    assert done["tokens"] == 3000 and done["duration_ms"] == 4000
    assert done["cost_usd"] == pytest.approx(3.0 + 1.5)  # 1M input at $3 + 100k output at $15
    assert f"s1/{MAIN_AGENT}" in norm.agents and "s1/ag1" not in norm.agents


def test_foreground_stop_without_its_post_tool_use_still_ends_after_the_grace() -> None:
    norm = normalizer(stop_grace_ms=5000)
    feed_all(
        norm,
        [
            agent_call("tu1"),
            {
                "session_id": "s1",
                "hook_event_name": "SubagentStart",
                "agent_id": "ag1",
                "agent_type": "general-purpose",
            },
            {"session_id": "s1", "hook_event_name": "SubagentStop", "agent_id": "ag1", "last_assistant_message": "ok"},
        ],
    )
    assert norm.expire(NOW + 1000) == []
    [done] = norm.expire(NOW + 10_000)
    assert (done["type"], done["agent_id"], done["outcome"]) == ("agent_done", "ag1", "unknown")


def test_old_claude_code_task_tool_without_ids_still_gives_a_graph() -> None:
    norm = normalizer()
    pre = {
        "session_id": "s1",
        "hook_event_name": "PreToolUse",
        "tool_name": "Task",
        "tool_input": {"description": "Search", "prompt": "p", "subagent_type": "Explore"},
    }
    post = {**pre, "hook_event_name": "PostToolUse", "tool_response": {"content": [{"type": "text", "text": "found"}]}}
    events = feed_all(norm, [pre, {**pre, "tool_name": "Read", "tool_input": {}}, post])
    spawns = [e for e in events if e["type"] == "agent_spawn"]
    dones = [e for e in events if e["type"] == "agent_done"]
    assert len(spawns) == 1 and len(dones) == 1 and spawns[0]["agent_id"] == dones[0]["agent_id"]
    assert spawns[0]["parent_id"] == MAIN_AGENT and spawns[0]["agent_type"] == "Explore"
    assert list(norm.agents) == [f"s1/{MAIN_AGENT}"]


def test_task_create_is_not_a_spawn() -> None:
    events = feed_all(
        normalizer(),
        [
            {
                "session_id": "s1",
                "hook_event_name": "PreToolUse",
                "tool_name": "TaskCreate",
                "tool_use_id": "t1",
                "tool_input": {"subagent_type": "x"},
            }
        ],
    )
    assert [e["type"] for e in events] == ["session_start", "tool_use"]


def test_each_sub_agent_appears_once_whatever_reveals_it_first() -> None:
    norm = normalizer()
    # No SubagentStart (background agents, #44075): PostToolUse(agentId) then its own calls.
    events = feed_all(
        norm,
        [
            agent_call("tu1", run_in_background=True),
            {
                "session_id": "s1",
                "hook_event_name": "PostToolUse",
                "tool_name": "Agent",
                "tool_use_id": "tu1",
                "tool_response": {"status": "async_launched", "agentId": "bg1"},
            },
            {
                "session_id": "s1",
                "hook_event_name": "SubagentStart",
                "agent_id": "bg1",
                "agent_type": "general-purpose",
            },
            {
                "session_id": "s1",
                "hook_event_name": "PreToolUse",
                "tool_name": "Bash",
                "tool_use_id": "x",
                "agent_id": "bg1",
            },
        ],
    )
    assert list(spawned(events)) == ["bg1"]
    # Background agents stay alive until SubagentStop.
    assert "s1/bg1" in norm.agents


def test_stray_agent_id_becomes_a_ghost_and_double_stop_is_idempotent() -> None:
    norm = normalizer()
    stop = {"session_id": "s1", "hook_event_name": "SubagentStop", "agent_id": "ghost", "stop_hook_active": True}
    events = feed_all(
        norm,
        [
            {
                "session_id": "s1",
                "hook_event_name": "PreToolUse",
                "tool_name": "Read",
                "tool_use_id": "r",
                "agent_id": "ghost",
            },
            stop,
            stop,
        ],
    )
    assert [e["type"] for e in events] == ["session_start", "agent_spawn", "tool_use", "agent_done"]
    assert events[1]["link"] == "none"


def test_nested_sub_agent_hangs_from_its_parent() -> None:
    events = feed_all(
        normalizer(),
        [
            agent_call("tu1", run_in_background=True),
            {
                "session_id": "s1",
                "hook_event_name": "SubagentStart",
                "agent_id": "outer",
                "agent_type": "general-purpose",
            },
            {**agent_call("tu2", subagent_type="Explore"), "agent_id": "outer", "agent_type": "general-purpose"},
            {"session_id": "s1", "hook_event_name": "SubagentStart", "agent_id": "inner", "agent_type": "Explore"},
        ],
    )
    mirror = Mirror().apply_all(events)
    assert {k: r["parent_id"] for k, r in mirror.records.items()} == {
        f"s1/{MAIN_AGENT}": None,
        "s1/outer": MAIN_AGENT,
        "s1/inner": "outer",
    }
    assert mirror.problems == []


def test_idle_agents_end_as_lost_and_idle_sessions_end() -> None:
    norm = normalizer(idle_timeout_ms=60_000)
    feed_all(
        norm,
        [
            {"session_id": "s1", "hook_event_name": "SubagentStart", "agent_id": "a", "agent_type": "x"},
        ],
    )
    expired = norm.expire(NOW + 61_000)
    assert [(e["type"], e.get("outcome")) for e in expired] == [("agent_done", "lost"), ("session_end", None)]
    assert norm.agents == {}


def test_stop_background_tasks_end_agents_whose_subagent_stop_never_came() -> None:
    norm = normalizer()
    events = feed_all(
        norm,
        [
            {"session_id": "s1", "hook_event_name": "SubagentStart", "agent_id": "a", "agent_type": "x"},
            {"session_id": "s1", "hook_event_name": "Stop", "background_tasks": [{"id": "a", "status": "completed"}]},
        ],
    )
    assert [(e["type"], e.get("outcome")) for e in events][-1] == ("agent_done", "success")


def test_secrets_in_descriptions_are_redacted() -> None:
    events = feed_all(
        normalizer(), [agent_call("t", description="deploy with sk-ant-api03-abcdefghijklmnopqrstuvwxyz")]
    )
    [spawn_call] = [e for e in events if e["type"] == "tool_use"]
    assert spawn_call["tool"] == "Agent"
    norm = normalizer()
    feed_all(
        norm,
        [
            agent_call("t", description="token sk-ant-api03-abcdefghijklmnopqrstuvwxyz"),
            {"session_id": "s1", "hook_event_name": "SubagentStart", "agent_id": "a", "agent_type": "general-purpose"},
        ],
    )
    assert "sk-ant" not in norm.agents["s1/a"].description  # type: ignore[operator]
    assert "[redacted]" in norm.agents["s1/a"].description  # type: ignore[operator]


@reliability(
    "Bad input",
    "unusable payloads",
    injected="not an object, no or unknown hook event, bad session or agent id, no tool name",
    checked="a Rejected with a reason counter, never an exception",
)
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([1, 2], "not_object"),
        ({"session_id": "s"}, "no_hook_event"),
        ({"session_id": "s", "hook_event_name": "Bogus"}, "unknown_hook_event"),
        ({"hook_event_name": "Stop"}, "bad_session_id"),
        ({"session_id": 5, "hook_event_name": "Stop"}, "bad_session_id"),
        ({"session_id": "a/b", "hook_event_name": "Stop"}, "bad_session_id"),
        ({"session_id": "s\ud83d", "hook_event_name": "Stop"}, "bad_session_id"),  # not storable as a field name
        ({"session_id": "s", "hook_event_name": "PreToolUse"}, "no_tool_name"),
        ({"session_id": "s", "hook_event_name": "Stop", "agent_id": 7}, "bad_agent_id"),
    ],
)
def test_unusable_payloads_are_rejected_with_a_reason(payload: Any, reason: str) -> None:
    with pytest.raises(Rejected) as exc:
        normalizer().feed(payload, NOW)
    assert exc.value.reason == reason and exc.value.detail


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
hook_names = st.sampled_from(
    [
        "PreToolUse",
        "PostToolUse",
        "PostToolUseFailure",
        "SubagentStart",
        "SubagentStop",
        "Stop",
        "SessionEnd",
        "SessionStart",
        "Notification",
        "UserPromptSubmit",
        "Weird",
    ]
)
payloads = st.fixed_dictionaries(
    {"hook_event_name": hook_names | json_values},
    optional={
        "session_id": st.sampled_from(["s1", "s2"]) | json_values,
        "agent_id": st.sampled_from(["a", "b", None]) | json_values,
        "tool_name": st.sampled_from(["Agent", "Task", "Read", "Skill"]) | json_values,
        "tool_use_id": st.sampled_from(["t1", "t2"]) | json_values,
        "tool_input": json_values,
        "tool_response": json_values,
        "background_tasks": json_values,
        "last_assistant_message": json_values,
        "_received_at": json_values,
        "message": json_values,
    },
)


@reliability(
    "Bad input",
    "arbitrary JSON (hypothesis)",
    injected="300 generated sequences of arbitrary JSON values and hook-shaped objects",
    checked="an event or a counted rejection, never an exception; output always serialisable",
)
@settings(max_examples=300, deadline=None)
@given(st.lists(payloads | json_values, max_size=12))
def test_normalizer_never_raises_on_arbitrary_json(items: list[Any]) -> None:
    norm = normalizer()
    for item in items:
        try:
            events = norm.feed(item, NOW)
        except Rejected as rej:
            assert rej.reason
            continue
        for event in events:
            assert event["type"] in EVENT_TYPES
            json.dumps(event)
    norm.expire(NOW + 10**10)
    sets, _, _ = norm.take_changes()
    assert all(json.loads(v) for v in sets.values())
