"""Live usage from transcripts: each response counted once, priced by model, put on the agent whose file it is,
and exactly once across a kill -9 (the offsets commit with the events file's checkpoint)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from contract import LOG_FIELD, Keys
from ingest.events import Normalizer
from ingest.pricing import Pricing
from ingest.transcripts import READ_CAP, Transcripts
from ingest.usage import Ledger, add, parse_line
from tests.mirror import Mirror, hash_view
from tests.stack import RedisServer, start_ingest, wait_for
from tests.transcript_writer import TranscriptWriter, expected_usage, price, usage

reliability = pytest.mark.reliability

SESSION = "5e551011-aaaa-4bbb-8ccc-000000000001"
EXPLORE = "a1b2c3d4e5f60718"
OPUS, SONNET, HAIKU = "claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"
TOKENS = ("input", "output", "cache_read", "cache_write", "messages")


# ---- counting rules, on the parser and the ledger alone


def _count_file(path: Path, session: str = SESSION) -> dict[str, Any]:
    ledger = Ledger(Pricing.load(None).cost)
    totals: dict[str, Any] = dict.fromkeys(TOKENS, 0) | {"cost_usd": 0.0}
    for raw in path.read_bytes().split(b"\n"):
        line = parse_line(raw)
        counted = ledger.count(str(path), session, line) if line else None
        if counted:
            for name in TOKENS:
                totals[name] += counted[1][name]
            totals["cost_usd"] += counted[1]["cost_usd"] or 0.0
    return totals


def _same(got: dict[str, Any] | None, want: dict[str, Any]) -> None:
    assert got is not None, f"no usage; expected {want}"
    assert {k: got[k] for k in TOKENS} == {k: want[k] for k in TOKENS}
    assert got["cost_usd"] == pytest.approx(want["cost_usd"], abs=1e-5)


def test_each_response_counts_once_from_its_best_line(tmp_path: Path) -> None:
    w = TranscriptWriter(tmp_path, SESSION)
    w.response(None, OPUS, usage(10, 300, read=2000, write_1h=500), blocks=3)  # placeholders, then the final
    # A sub-agent file's race: the final line never comes; the whole line with most output counts.
    msg = w.response(None, SONNET, usage(7, 40, write_5m=100), blocks=2, final=False)
    w.line(w.main_path, None, SONNET, usage(7, 90, write_5m=100), msg, w.lines[-1].key[1], final=False)
    w.line(w.main_path, None, SONNET, usage(7, 60, write_5m=100), msg, w.lines[-1].key[1], final=False)
    w.response(None, OPUS, usage(3, 20), blocks=1, request_id="")  # no requestId: keyed on the message id
    w.other(w.main_path, "progress")  # embeds a copy of a response: never counted
    w.other(w.main_path)
    w.response(None, "<synthetic>", usage(0, 5), blocks=1)
    w.lines.pop()  # a synthetic message is not billed: not expected either
    w.append(w.main_path, '{"type": "assistant", "message": {"usage": {"output_tokens": 4}, "id": "m-cut"\n')
    got = _count_file(w.main_path)
    want = expected_usage(w.lines, {w.main_path})
    assert want["messages"] == 3 and want["output"] == 300 + 90 + 20
    _same(got, want)
    # Priced by hand from the table: the 1h writes at the 1h rate, the 5m ones at the 5m rate.
    assert got["cost_usd"] == pytest.approx(
        price(OPUS, usage(10, 300, read=2000, write_1h=500))
        + price(SONNET, usage(7, 90, write_5m=100))
        + price(OPUS, usage(3, 20)),
        abs=1e-5,
    )


def test_a_copied_response_counts_in_the_first_file_only(tmp_path: Path) -> None:
    w = TranscriptWriter(tmp_path, SESSION)
    msg = w.response(None, OPUS, usage(10, 100))
    copy = tmp_path / "fork.jsonl"
    w.line(copy, None, OPUS, usage(10, 100), msg, w.lines[-1].key[1], final=True)
    ledger = Ledger(Pricing.load(None).cost)
    counted = [
        ledger.count(str(path), SESSION, line)
        for path in (w.main_path, copy)
        for raw in path.read_bytes().split(b"\n")
        if (line := parse_line(raw)) is not None
    ]
    # The final line in the session file, then the copy: the copy changes nothing.
    assert counted[-1] is None
    assert [c[0] for c in counted if c is not None] == [str(w.main_path)] * (len(counted) - 1)
    assert sum(c[1]["messages"] for c in counted if c is not None) == 1


def test_reading_stops_at_the_last_complete_line_and_skips_fifos(tmp_path: Path) -> None:
    w = TranscriptWriter(tmp_path, SESSION)
    t = Transcripts(Ledger(Pricing.load(None).cost))
    w.response(None, OPUS, usage(1, 50), blocks=1)
    w.append(w.main_path, '{"type": "assistant", "message": {"id": "m2", "model": "claude-opus-4-5", ')
    t.follow(str(w.main_path), SESSION, "main")
    f = t.files[str(w.main_path)]
    assert len(list(t.read(f, 0))) == 1
    assert f.off == w.main_path.read_bytes().rfind(b"\n") + 1  # the half-written line waits
    w.append(w.main_path, '"stop_reason": "end_turn", "usage": {"input_tokens": 2, "output_tokens": 8}}}\n')
    assert [line.tokens for _, line in t.read(f, 5_000)] == [(2, 8, 0, 0)]
    # A line longer than one read (a huge tool result) is skipped to its end; the next one still counts.
    w.append(w.main_path, '{"type": "user", "content": "' + "x" * (READ_CAP + 10) + '"}\n')
    w.response(None, OPUS, usage(3, 33), blocks=1)
    got = [line.tokens for _ in range(3) for _, line in t.read(f, 10_000 + _ * 1000)]
    assert got == [(3, 33, 0, 0)] and f.off == w.main_path.stat().st_size
    fifo = tmp_path / "agent-fifo.jsonl"
    os.mkfifo(fifo)
    t.follow(str(fifo), SESSION, "x")
    assert list(t.read(t.files[str(fifo)], 0)) == []  # returns at once: never blocks on a FIFO


# ---- through the real ingest on a real redis-server


def _client(server: RedisServer) -> Redis:
    return Redis.from_url(server.url, decode_responses=True)


def _hgetall(server: RedisServer, key: str) -> dict[str, dict[str, Any]]:
    with _client(server) as client:
        return {k: json.loads(v) for k, v in client.hgetall(key).items()}


def _events(server: RedisServer, prefix: str) -> list[dict[str, Any]]:
    with _client(server) as client:
        return [json.loads(fields[LOG_FIELD])["data"] for _, fields in client.xrange(Keys(prefix).log)]


class Hooks:
    """Payloads written to the events file as the hook writes them (one line each, stamped)."""

    def __init__(self, events_file: Path, transcript: Path) -> None:
        self.file = events_file
        self.transcript = str(transcript)
        events_file.parent.mkdir(parents=True, exist_ok=True)

    def send(self, hook: str, **fields: Any) -> None:
        payload = {
            "session_id": SESSION,
            "transcript_path": self.transcript,
            "cwd": "/tmp/acme",
            "hook_event_name": hook,
            "_received_at": int(time.time() * 1000),
            **fields,
        }
        with self.file.open("a") as f:
            f.write(json.dumps(payload) + "\n")


def _usage_of(server: RedisServer, prefix: str, agent: str, field: str = "usage") -> dict[str, Any] | None:
    record = _hgetall(server, Keys(prefix).alive).get(f"{SESSION}/{agent}")
    return None if record is None else record.get(field)


def _wait_usage(server: RedisServer, prefix: str, agent: str, want: dict[str, Any], field: str = "usage") -> None:
    def matches() -> bool:
        got = _usage_of(server, prefix, agent, field)
        return got is not None and all(got[k] == want[k] for k in TOKENS)

    wait_for(matches, timeout=15, what=f"{agent} {field} = {want}; last {_usage_of(server, prefix, agent, field)}")
    _same(_usage_of(server, prefix, agent, field), want)


@reliability(
    "Live cost",
    "transcript usage exactly once across kill -9",
    injected="transcripts written while a session runs, responses split over placeholder lines; ingest killed -9 "
    "with a response half-counted, its final line and new ones written while it is down",
    checked="each agent's tokens and cost equal the responses counted once each (by hand from the table); the "
    "done event carries transcript usage, not the floor; late lines land in the parent's sub_usage; the stream "
    "equals the alive hash; at most one usage update per agent per second",
)
def test_live_usage_per_agent_exactly_once_across_kill_9(
    redis_server: RedisServer, prefix: str, events_file: Path, tmp_path: Path
) -> None:
    w = TranscriptWriter(tmp_path / "projects", SESSION)
    hooks = Hooks(events_file, w.main_path)
    sub = w.agent_path(EXPLORE)
    w.response(None, OPUS, usage(12, 400, read=15_000, write_1h=3_000), blocks=3)
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
    try:
        hooks.send("SessionStart", source="startup", model=OPUS)
        hooks.send("UserPromptSubmit", prompt="audit the checkout")
        _wait_usage(redis_server, prefix, "main", expected_usage(w.lines, {w.main_path}))

        hooks.send(
            "PreToolUse",
            tool_name="Agent",
            tool_use_id="toolu_1",
            tool_input={"subagent_type": "Explore", "description": "map checkout", "prompt": "Map it."},
        )
        hooks.send("SubagentStart", agent_id=EXPLORE, agent_type="Explore")
        w.response(EXPLORE, HAIKU, usage(30, 120, read=900, write_5m=2_000), blocks=2)
        half = w.response(EXPLORE, HAIKU, usage(5, 70), blocks=2, final=False)  # its final line comes later
        hooks.send(
            "PreToolUse",
            tool_name="Read",
            tool_use_id="toolu_2",
            agent_id=EXPLORE,
            agent_type="Explore",
            tool_input={"file_path": "/tmp/acme/a.ts"},
        )
        _wait_usage(redis_server, prefix, EXPLORE, expected_usage(w.lines, {sub}))
        assert _usage_of(redis_server, prefix, EXPLORE)["basis"] == "transcript"

        # kill -9 with a response half counted; while it is down, its final line and a new response land.
        ingest.stop(signal.SIGKILL)
        before_kill = len(_events(redis_server, prefix))
        w.line(sub, EXPLORE, HAIKU, usage(5, 210), half, w.lines[-1].key[1], final=True)
        w.response(EXPLORE, HAIKU, usage(8, 33), blocks=3)
        w.response(None, OPUS, usage(2, 50), blocks=1)
        ingest = start_ingest(redis_server.url, events_file, prefix)
        _wait_usage(redis_server, prefix, EXPLORE, expected_usage(w.lines, {sub}))
        _wait_usage(redis_server, prefix, "main", expected_usage(w.lines, {w.main_path}))

        # Its end: the agent_done carries its transcript usage (not the Agent tool's floor), and its figures
        # move up to the orchestrator's sub_usage; a line landing after SubagentStop still counts there.
        hooks.send("SubagentStop", agent_id=EXPLORE, agent_type="Explore", agent_transcript_path=str(sub))
        hooks.send(
            "PostToolUse",
            tool_name="Agent",
            tool_use_id="toolu_1",
            tool_input={"subagent_type": "Explore", "description": "map checkout"},
            tool_response={"status": "completed", "agentId": EXPLORE, "totalTokens": 999, "usage": usage(1, 9)},
        )
        _wait_usage(redis_server, prefix, "main", expected_usage(w.lines, {sub}), field="sub_usage")
        w.response(EXPLORE, HAIKU, usage(4, 44), blocks=1)
        _wait_usage(redis_server, prefix, "main", expected_usage(w.lines, {sub}), field="sub_usage")

        events = _events(redis_server, prefix)
        done = [e for e in events if e["type"] == "agent_done" and e["agent_id"] == EXPLORE]
        assert len(done) == 1 and done[0]["usage"]["basis"] == "transcript"
        assert done[0]["usage"]["output"] >= 120 + 210 + 33  # all of it but the late line
        # The stream is the truth: applied to nothing, it holds what the alive hash holds (usage included).
        with _client(redis_server) as client:
            assert Mirror().apply_all(events).records == hash_view(client.hgetall(Keys(prefix).alive))
        # At most once a second per agent (within one run: a restarted ingest reads at once).
        for run in (events[:before_kill], events[before_kill:]):
            times = [e["ts"] for e in run if e["type"] == "agent_update" and e["agent_id"] == EXPLORE and "usage" in e]
            assert all(b - a >= 900 for a, b in zip(times, times[1:], strict=False)), times
    finally:
        ingest.stop()


@reliability(
    "Live cost",
    "an unreadable transcript",
    injected="transcript paths of another machine",
    checked="the sub-agent ends with the Agent tool's usage, basis floor, priced by model; it reaches the "
    "orchestrator's sub_usage",
)
def test_an_unreadable_transcript_leaves_the_agent_tool_floor(
    redis_server: RedisServer, prefix: str, events_file: Path, tmp_path: Path
) -> None:
    hooks = Hooks(events_file, tmp_path / "elsewhere" / f"{SESSION}.jsonl")  # another machine's path
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
    try:
        hooks.send("SessionStart", source="startup")
        hooks.send(
            "PreToolUse",
            tool_name="Agent",
            tool_use_id="toolu_9",
            tool_input={"subagent_type": "Plan", "description": "plan", "model": "sonnet"},
        )
        hooks.send(
            "SubagentStop",
            agent_id="b0b0b0b0b0b0b0b0",
            agent_type="Plan",
            agent_transcript_path=str(tmp_path / "elsewhere" / "agent-b0b0b0b0b0b0b0b0.jsonl"),
        )
        final = usage(20, 500, read=4000)
        hooks.send(
            "PostToolUse",
            tool_name="Agent",
            tool_use_id="toolu_9",
            tool_input={"subagent_type": "Plan"},
            tool_response={
                "status": "completed",
                "agentId": "b0b0b0b0b0b0b0b0",
                "usage": final,
                "resolvedModel": SONNET,
            },
        )
        wait_for(lambda: any(e["type"] == "agent_done" for e in _events(redis_server, prefix)), what="agent_done")
        done = next(e for e in _events(redis_server, prefix) if e["type"] == "agent_done")
        assert done["usage"]["basis"] == "floor"
        assert done["usage"]["output"] == 500 and done["usage"]["cache_read"] == 4000
        assert done["usage"]["cost_usd"] == pytest.approx(price(SONNET, final), abs=1e-6)
        _wait_usage(redis_server, prefix, "main", {**done["usage"]}, field="sub_usage")
    finally:
        ingest.stop()


# ---- layouts and subtree totals, on the normalizer in-process


class Session:
    """A normalizer following transcripts, fed payloads one second apart (so every file is read each time)."""

    def __init__(self, w: TranscriptWriter) -> None:
        self.w = w
        self.norm = Normalizer(source="t", pricing=Pricing.load(None), transcripts=True)
        self.now = 1_800_000_000_000
        self.events: list[dict[str, Any]] = []

    def send(self, hook: str, **fields: Any) -> None:
        self.now += 1000
        payload = {"session_id": SESSION, "transcript_path": str(self.w.main_path), "hook_event_name": hook, **fields}
        self.events += self.norm.feed({"_received_at": self.now, **payload}, self.now)
        self.tick()

    def tick(self) -> None:
        self.now += 1000
        self.events += self.norm.expire(self.now)

    def usage(self, agent: str, field: str = "usage") -> dict[str, Any] | None:
        found = self.norm.graph.get(SESSION, agent)
        assert found is not None, f"{agent} is not alive"
        value: dict[str, Any] | None = getattr(found, field)
        return value


def _spawn(s: Session, call: str, agent: str, agent_type: str, caller: str | None = None) -> None:
    by = {"agent_id": caller, "agent_type": "general-purpose"} if caller else {}
    s.send("PreToolUse", tool_name="Agent", tool_use_id=call, tool_input={"subagent_type": agent_type}, **by)
    s.send("SubagentStart", agent_id=agent, agent_type=agent_type)


def test_the_beside_the_session_layout_and_inline_sidechains(tmp_path: Path) -> None:
    """2.0.28 to 2.1.1 write agent-<id>.jsonl beside the session file; up to 2.0.27 sub-agent turns are in the
    session file itself (isSidechain), counted for the session's subtree, not for the orchestrator."""
    w = TranscriptWriter(tmp_path, SESSION)
    s = Session(w)
    s.send("SessionStart", source="startup")
    w.response(None, OPUS, usage(10, 100))
    side = w.response(None, SONNET, usage(5, 50), sidechain=True)
    _spawn(s, "toolu_a", EXPLORE, "Explore")
    beside = w.agent_path(EXPLORE, layout="beside")
    w.response(EXPLORE, HAIKU, usage(3, 30), path=beside)
    for _ in range(6):  # a running sub-agent's file is looked for every few seconds
        s.tick()
    _same(s.usage(EXPLORE), expected_usage(w.lines, {beside}))
    mine = [x for x in w.lines if x.path == w.main_path and not x.sidechain]
    _same(s.usage("main"), expected_usage(mine, {w.main_path}))
    inline = [x for x in w.lines if x.key[0] == side]
    _same(s.usage("main", "sub_usage"), expected_usage(inline, {w.main_path}))


def test_subtree_totals_add_up_as_agents_end(tmp_path: Path) -> None:
    """A nested agent's figures go to its parent when it ends, the parent's (with them) to the orchestrator:
    at every step, usage + sub_usage + the alive children's subtrees is everything counted."""
    w = TranscriptWriter(tmp_path, SESSION)
    s = Session(w)
    s.send("SessionStart", source="startup")
    outer, inner = "0000aaaa0000aaaa", "1111bbbb1111bbbb"
    _spawn(s, "toolu_o", outer, "general-purpose")
    _spawn(s, "toolu_i", inner, "Explore", caller=outer)
    w.response(None, OPUS, usage(10, 100, read=1000))
    w.response(outer, SONNET, usage(20, 200, write_1h=300))
    w.response(inner, HAIKU, usage(30, 300, read=50))
    w.response(inner, HAIKU, usage(1, 40), final=False)
    for _ in range(6):
        s.tick()
    everything = expected_usage(w.lines, {w.main_path, w.agent_path(outer), w.agent_path(inner)})

    def subtree(agent: str) -> dict[str, Any]:
        found = s.norm.graph.get(SESSION, agent)
        assert found is not None
        total = add(found.usage, found.sub_usage) or {}
        for child in s.norm.graph.agents.values():
            if child.parent_id == agent and child.agent_id != agent:
                total = add(total, subtree(child.agent_id)) or {}
        return total

    _same(subtree("main"), everything)
    _same(s.usage(inner), expected_usage(w.lines, {w.agent_path(inner)}))
    s.send("SubagentStop", agent_id=inner, agent_type="Explore", agent_transcript_path=str(w.agent_path(inner)))
    s.send(
        "PostToolUse",
        tool_name="Agent",
        tool_use_id="toolu_i",
        agent_id=outer,
        agent_type="general-purpose",
        tool_input={},
        tool_response={"status": "completed", "agentId": inner, "usage": usage(1, 1)},
    )
    _same(s.usage(outer, "sub_usage"), expected_usage(w.lines, {w.agent_path(inner)}))
    _same(subtree("main"), everything)
    w.response(inner, HAIKU, usage(2, 22))  # lands after its end: still in the subtree
    s.tick()
    everything = expected_usage(w.lines, {w.main_path, w.agent_path(outer), w.agent_path(inner)})
    _same(subtree("main"), everything)
    s.send("SubagentStop", agent_id=outer, agent_type="general-purpose")
    s.send(
        "PostToolUse",
        tool_name="Agent",
        tool_use_id="toolu_o",
        tool_input={},
        tool_response={"status": "completed", "agentId": outer},
    )
    assert s.norm.graph.get(SESSION, outer) is None
    _same(subtree("main"), everything)
    done = {e["agent_id"]: e for e in s.events if e["type"] == "agent_done"}
    assert done[inner]["usage"]["basis"] == "transcript" and done[outer]["usage"]["basis"] == "transcript"
