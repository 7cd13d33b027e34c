"""Issue 11 in a real Chromium: the inspector, the activity feed, the session header and the cost labels,
against a real redis-server, ingest (with --publish-details) and relay, fed the fixture session."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Locator, Page, WebSocketRoute, expect

from contract import Keys
from ingest.agent import DETAIL_FIELDS
from tests.stack import (
    RedisServer,
    Stack,
    fixture_payloads,
    play_fixture,
    run_hook,
    running_stack,
    wait_for,
)
from tests.transcript_writer import TranscriptWriter, expected_usage, usage

pytestmark = pytest.mark.browser

SESSION = "7f3c2a91-5b6e-4d0a-9c1e-2f8b4a6d3e17"  # the fixture's session
EXPLORE, GENERAL, REVIEWER = "a3f9c1d27b84e065", "a71be0c94d2f5a38", "ac52d8e6f1097b4a"
# Fixture line indexes (as in test_browser.py): [0, SUBAGENTS_BUSY) spawns the three sub-agents and runs their first
# tools; up to AFTER_PERMISSION Explore ends, a Bash fails and a permission prompt waits; GENERAL_STOP is the
# general-purpose agent's SubagentStop.
SUBAGENTS_BUSY = 28
AFTER_PERMISSION = 33
GENERAL_STOP = 38
OUTCOME_MARKS = {"success": "✓", "failure": "✕", "partial": "◐", "lost": "⌀", "unknown": "?"}
# Event types that always make a feed line (web/feedmodel.js describeEvent); the others are worked out below.
LINE_TYPES = {"session_start", "session_end", "prompt", "agent_spawn", "tool_use", "skill_use", "tool_fail"}
LINE_TYPES |= {"stop_fail", "compact_start", "compact_done"}

expect.set_options(timeout=15_000)


# ---- fixtures and helpers


@pytest.fixture
def stack(redis_server: RedisServer, events_file: Path) -> Iterator[Stack]:
    """ingest with --publish-details (the calls' one-line summaries) and a relay, on the shared redis-server."""
    events_file.parent.mkdir(parents=True, exist_ok=True)
    events_file.touch()
    with running_stack(redis_server.url, events_file, ingest_args=("--publish-details",)) as s:
        yield s


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A 1400x900 page that fails the test on any script error or dialog."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    def dialog(d: Dialog) -> None:
        errors.append(f"dialog: {d.message}")
        d.dismiss()

    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", console)
    page.on("dialog", dialog)
    try:
        yield page
        assert errors == [], errors
    finally:
        context.close()


def open_page(page: Page, stack: Stack) -> None:
    page.goto(stack.base_url + "/")
    expect(page.locator("#status")).to_have_attribute("data-status", "connected")


def open_feed(page: Page) -> None:
    """The feed starts closed; its toggle opens it."""
    expect(page.locator("#feed")).to_have_attribute("data-open", "false")
    expect(page.locator("#feed-lines")).to_be_hidden()
    page.locator("#feed .toggle").click()
    expect(page.locator("#feed")).to_have_attribute("data-open", "true")
    page.mouse.move(700, 200)  # off the feed, which holds still under the pointer
    expect(page.locator("#feed")).to_have_attribute("data-paused", "false")


def node(page: Page, agent_id: str, session: str = SESSION) -> Locator:
    return page.locator(f'g.node[data-id="{session}/{agent_id}"]')


def field(page: Page, name: str) -> Locator:
    return page.locator(f'#inspector [data-field="{name}"]')


def caught_up(page: Page, stack: Stack, redis_server: RedisServer, lines: int) -> None:
    """Wait until ingest has read `lines` lines and the page has applied every event they made."""
    keys = Keys(stack.prefix)
    wait_for(lambda: int(redis_server.cli("HGET", keys.stats, "lines").strip() or 0) >= lines, what=f"{lines} lines")
    seq = int(redis_server.cli("HGET", keys.meta, "seq").strip())
    page.wait_for_function("s => window.agentwatch.stats.lastSeq >= s", arg=seq)


def logged_events(redis_server: RedisServer, stack: Stack) -> list[dict[str, Any]]:
    """Every envelope ingest committed, in seq order: the stream the page was sent."""
    out = subprocess.run(
        ["redis-cli", "-p", str(redis_server.port), "--raw", "XRANGE", Keys(stack.prefix).log, "-", "+"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def feed_lines(envelopes: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(seq, node id) of the events the feed shows as lines, in stream order: every event of LINE_TYPES, an
    agent_update that starts a wait, an agent_done that ended something, a notification no update repeats; a
    stand-in's lines under the id it was re-keyed to."""
    waiting: dict[str, str] = {}
    lines: list[tuple[int, str]] = []
    for env in envelopes:
        data = env["data"]
        key = f"{data['session_id']}/{data.get('agent_id') or 'main'}"
        if data.get("previous_id") is not None:  # a re-key: the stand-in's lines are the real agent's
            previous = f"{data['session_id']}/{data['previous_id']}"
            if previous in waiting:
                waiting[key] = waiting.pop(previous)
            lines = [(seq, key if k == previous else k) for seq, k in lines]
        kind = data["type"]
        if kind == "agent_update" and "waiting" in data:
            shown = bool(data["waiting"]) and data["waiting"] != waiting.get(key)
            if data["waiting"]:
                waiting[key] = data["waiting"]
            else:
                waiting.pop(key, None)
        elif kind == "agent_done":
            shown = not data.get("merged_into")
            waiting.pop(key, None)
        elif kind == "notification":
            shown = data.get("notification_type") not in ("permission_prompt", "idle_prompt")
        else:
            shown = kind in LINE_TYPES
        if shown:
            lines.append((env["seq"], key))
    return lines


def shown_seqs(page: Page) -> list[int]:
    return [int(s) for s in page.eval_on_selector_all("#feed-lines li", "els => els.map(e => e.dataset.seq)")]


def duration_text(ms: int) -> str:
    """web/inspect.js formatDuration, for calls under a minute."""
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def calls_of(agent_id: str, payloads: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(tool, summary, duration, state) of an agent's calls, newest first, from the fixture's payloads."""
    calls: dict[str, list[str]] = {}
    for p in payloads:
        if p.get("agent_id") != agent_id:
            continue
        if p["hook_event_name"] == "PreToolUse":
            tool_input = p["tool_input"]
            detail = next((tool_input[f] for f in DETAIL_FIELDS if isinstance(tool_input.get(f), str)), "")
            calls[p["tool_use_id"]] = [p["tool_name"], " ".join(detail.split()), "running", "running"]
        elif p["hook_event_name"] in ("PostToolUse", "PostToolUseFailure"):
            call = calls[p["tool_use_id"]]
            call[2] = duration_text(p["duration_ms"])
            call[3] = "failed" if p["hook_event_name"] == "PostToolUseFailure" else "done"
    return [(c[0], c[1], c[2], c[3]) for c in reversed(calls.values())]


def spawn_of(agent_id: str, payloads: list[dict[str, Any]]) -> dict[str, str]:
    """What the fixture says of a sub-agent: its spawn call's description and type, and the resolved model."""
    for p in payloads:
        response = p.get("tool_response")
        if p["hook_event_name"] == "PostToolUse" and isinstance(response, dict) and response.get("agentId") == agent_id:
            spawn = p["tool_input"]
            model = response.get("resolvedModel") or spawn["model"]
            asked = spawn["prompt"].strip().splitlines()[0]
            return {"description": spawn["description"], "type": spawn["subagent_type"], "model": model, "asked": asked}
    raise AssertionError(f"no spawn of {agent_id} in the fixture")


def payloads(upto: int | None = None) -> list[dict[str, Any]]:
    return [json.loads(p) for p in fixture_payloads()[:upto]]


# ---- the inspector


def test_clicking_a_node_opens_the_inspector_for_that_agent(
    stack: Stack, page: Page, redis_server: RedisServer
) -> None:
    """Type, model, description, status, tool counts and last calls of the clicked agent; parent and child links
    navigate; a finished agent stays readable with its outcome; Esc closes."""
    open_page(page, stack)
    played = payloads(GENERAL_STOP)
    play_fixture(stack.events_file, GENERAL_STOP)
    caught_up(page, stack, redis_server, GENERAL_STOP)
    inspector = page.locator("#inspector")
    expect(inspector).to_be_hidden()

    node(page, GENERAL).locator(".body").click(force=True)
    expect(inspector).to_be_visible()
    spawn = spawn_of(GENERAL, played)
    expect(page.locator("#inspector-title")).to_have_text(spawn["type"])
    expect(field(page, "type")).to_have_text(spawn["type"])
    expect(field(page, "model")).to_have_text(spawn["model"])
    expect(field(page, "description")).to_have_text(spawn["description"])
    assert len(spawn["asked"]) < 200  # ingest's cap on published text
    expect(field(page, "asked")).to_have_text(f"asked: {spawn['asked']}")  # with --publish-details
    expect(field(page, "status")).to_have_text("alive")
    expect(field(page, "duration")).to_have_text(re.compile(r"^\d+ s so far$"))
    expect(node(page, GENERAL)).to_have_attribute("data-selected", "true")
    counts = Counter(
        p["tool_name"] for p in played if p.get("agent_id") == GENERAL and p["hook_event_name"] == "PreToolUse"
    )
    tools = page.locator("#inspector .tools li")
    expect(tools).to_have_count(len(counts))
    for tool, n in counts.items():
        expect(page.locator(f'#inspector .tools li[data-tool="{tool}"] b')).to_have_text(str(n))
    rows = page.locator("#inspector .calls tr")
    expected_calls = calls_of(GENERAL, played)
    assert any(c[3] == "failed" for c in expected_calls)  # the fixture's failed Bash
    expect(rows).to_have_count(len(expected_calls))
    shown = page.eval_on_selector_all(
        "#inspector .calls tr",
        "trs => trs.map(tr => [...tr.querySelectorAll('.tool, .summary, .duration')].map(td => td.textContent)"
        ".concat(tr.dataset.state))",
    )
    assert [tuple(row) for row in shown] == expected_calls

    # The parent link opens the orchestrator; its children link to each sub-agent, finished ones included.
    project = Path(played[0]["cwd"]).name
    page.locator('#inspector [data-field="parent"] button.link').click()
    expect(page.locator("#inspector-title")).to_have_text(project)
    expect(field(page, "type")).to_have_text("orchestrator")
    prompts = [p["prompt"] for p in played if p["hook_event_name"] == "UserPromptSubmit"]
    expect(field(page, "asked")).to_have_text(f"asked: {prompts[-1].splitlines()[0]}")
    stopped = {p["agent_id"] for p in played if p["hook_event_name"] == "SubagentStop"}
    spawned = [r["agentId"] for p in played if isinstance(r := p.get("tool_response"), dict) and "agentId" in r]
    alive = len(set(spawned) - stopped)
    header = page.locator(f'#session-list li[data-session="{SESSION}"]')
    expect(header).to_contain_text(
        f"{len(prompts)} prompt{'s' if len(prompts) != 1 else ''} · {alive}/{len(spawned)} agents"
    )
    children = page.locator("#inspector .children button.link")
    expect(children).to_have_count(len(spawned))
    assert sorted(children.evaluate_all("bs => bs.map(b => b.dataset.id)")) == sorted(f"{SESSION}/{a}" for a in spawned)
    expect(page.locator(f'#inspector .children button[data-id="{SESSION}/{EXPLORE}"]')).to_have_attribute(
        "data-status", "done"
    )
    page.locator(f'#inspector .children button[data-id="{SESSION}/{REVIEWER}"]').click()
    expect(page.locator("#inspector-title")).to_have_text(spawn_of(REVIEWER, played)["type"])
    # Its permission prompt (line 32) was answered when its WebFetch went through (line 37): a finished wait.
    expect(field(page, "status")).to_have_text("alive")
    expect(field(page, "waited")).to_have_text(re.compile(r"^\d+ s$"))
    expect(page.locator("#inspector-title")).to_be_focused()

    # The general-purpose agent ends while the panel is open on it: it leaves the graph, not the panel.
    page.locator('#inspector [data-field="parent"] button.link').click()
    page.locator(f'#inspector .children button[data-id="{SESSION}/{GENERAL}"]').click()
    expect(page.locator("#inspector-title")).to_have_text(spawn["type"])
    play_fixture(stack.events_file, GENERAL_STOP + 1, start=GENERAL_STOP)
    caught_up(page, stack, redis_server, GENERAL_STOP + 1)
    [done] = [
        e["data"]
        for e in logged_events(redis_server, stack)
        if e["data"]["type"] == "agent_done" and e["data"]["agent_id"] == GENERAL
    ]
    expect(node(page, GENERAL)).to_have_count(0)
    expect(field(page, "status")).to_have_text(f"done {OUTCOME_MARKS[done['outcome']]} {done['outcome']}")
    expect(field(page, "duration")).not_to_contain_text("so far")
    expect(rows).to_have_count(len(expected_calls))

    page.keyboard.press("Escape")
    expect(inspector).to_be_hidden()


def test_nodes_take_the_keyboard_enter_opens_esc_closes(stack: Stack, page: Page) -> None:
    """Tab reaches the nodes (role=button, a spoken name); Enter on a focused node opens it; Esc closes."""
    open_page(page, stack)
    play_fixture(stack.events_file, SUBAGENTS_BUSY)
    expect(page.locator("g.node")).to_have_count(4)
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => [document.activeElement.matches('g.node'), document.activeElement.getAttribute('role'),"
        " document.activeElement.getAttribute('aria-label')]"
    )
    assert focused[0] is True and focused[1] == "button" and focused[2], focused

    node(page, REVIEWER).focus()
    page.keyboard.press("Enter")
    expect(page.locator("#inspector")).to_be_visible()
    expect(page.locator("#inspector-title")).to_have_text(spawn_of(REVIEWER, payloads(SUBAGENTS_BUSY))["type"])
    page.keyboard.press("Escape")
    expect(page.locator("#inspector")).to_be_hidden()
    expect(node(page, REVIEWER)).to_be_focused()
    # The close button closes too.
    node(page, EXPLORE).focus()
    page.keyboard.press("Enter")
    expect(page.locator("#inspector-title")).to_have_text("Explore")
    page.locator("#inspector .close").click()
    expect(page.locator("#inspector")).to_be_hidden()


def test_the_inspector_does_not_cover_the_header(stack: Stack, browser: Browser) -> None:
    """From 720p to 4K the open panel stays below the header, the status badge and above the counters."""
    play_fixture(stack.events_file, SUBAGENTS_BUSY)
    for width, height in ((1280, 720), (3840, 2160), (800, 600)):
        context = browser.new_context(viewport={"width": width, "height": height})
        try:
            page = context.new_page()
            open_page(page, stack)
            node(page, "main").locator(".body").click(force=True)
            expect(page.locator("#inspector")).to_be_visible()
            panel = page.locator("#inspector").bounding_box()
            assert panel is not None
            for selector in ("#top", "#status"):
                box = page.locator(selector).bounding_box()
                assert box is not None and box["y"] + box["height"] <= panel["y"], (width, selector, box, panel)
            footer = page.locator("#counters").bounding_box()
            assert footer is not None and panel["y"] + panel["height"] <= footer["y"], (width, footer, panel)
            assert panel["x"] + panel["width"] <= width
            size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('#inspector')).fontSize)")
            assert size >= 12
        finally:
            context.close()


# ---- the activity feed


def test_feed_newest_first_filters_and_pauses_under_the_pointer(
    stack: Stack, page: Page, redis_server: RedisServer
) -> None:
    """Lines in stream order, newest first; a session and an agent filter; held still while hovered."""
    open_page(page, stack)
    open_feed(page)
    play_fixture(stack.events_file, SUBAGENTS_BUSY)
    other = "feed-b-session"
    for payload in (
        {"hook_event_name": "SessionStart", "source": "startup", "model": "claude-opus-4-5"},
        {
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_use_id": "toolu_b1",
            "tool_input": {"command": "ls"},
        },
    ):
        result = run_hook(json.dumps({"session_id": other, "cwd": "/home/dev/billing", **payload}), stack.events_file)
        assert result.returncode == 0, result
    caught_up(page, stack, redis_server, SUBAGENTS_BUSY + 2)
    expected = feed_lines(logged_events(redis_server, stack))
    assert len(expected) < 200  # all of them fit in the feed
    expect(page.locator("#feed-lines li")).to_have_count(len(expected))
    assert shown_seqs(page) == [seq for seq, _ in reversed(expected)]
    failed = page.locator("#feed-lines li[data-tone=fail]")
    expect(failed).to_have_count(0)  # no failure yet
    explore_spawn = page.locator(f'#feed-lines li[data-agent="{SESSION}/{EXPLORE}"][data-tone="spawn"]')
    expect(explore_spawn.locator(".who")).to_have_text("Explore")
    expect(explore_spawn.locator(".what")).to_have_text(f"spawned: {spawn_of(EXPLORE, payloads())['description']}")
    expect(explore_spawn.locator(".who")).to_have_css("color", "rgb(59, 130, 246)")  # haiku blue, as drawn

    # By session: only the other session's lines.
    page.locator("#feed-session").select_option(other)
    expect(page.locator("#feed-lines li")).to_have_count(sum(1 for _, key in expected if key.startswith(other + "/")))
    assert all(
        a.startswith(other + "/")
        for a in page.eval_on_selector_all("#feed-lines li", "els => els.map(e => e.dataset.agent)")
    )
    page.locator("#feed-session").select_option("")
    expect(page.locator("#feed-lines li")).to_have_count(len(expected))
    # By agent: click its name on one of its lines.
    explore_key = f"{SESSION}/{EXPLORE}"
    explore_spawn.locator(".who").click()
    expect(page.locator("#feed-agent")).to_have_value(explore_key)
    expect(page.locator("#feed-session")).to_have_value(SESSION)
    expect(page.locator("#feed-lines li")).to_have_count(sum(1 for _, key in expected if key == explore_key))
    assert shown_seqs(page) == [seq for seq, key in reversed(expected) if key == explore_key]
    page.locator("#feed-session").select_option("")
    expect(page.locator("#feed-lines li")).to_have_count(len(expected))

    # Paused while the pointer is over it: new lines wait, counted; they show when it leaves.
    page.locator("#feed .head").hover()
    expect(page.locator("#feed")).to_have_attribute("data-paused", "true")
    before = shown_seqs(page)
    play_fixture(stack.events_file, AFTER_PERMISSION, start=SUBAGENTS_BUSY)
    caught_up(page, stack, redis_server, AFTER_PERMISSION + 2)
    after = feed_lines(logged_events(redis_server, stack))
    new = len(after) - len(expected)
    assert new >= 3  # Explore's end, the reviewer's WebFetch, the failed Bash, the permission wait
    expect(page.locator("#feed .note")).to_have_text(f"paused · {new} new")
    assert shown_seqs(page) == before
    page.mouse.move(700, 200)  # off the feed
    expect(page.locator("#feed")).to_have_attribute("data-paused", "false")
    expect(page.locator("#feed-lines li")).to_have_count(len(after))
    assert shown_seqs(page) == [seq for seq, _ in reversed(after)]
    expect(failed).to_have_count(1)
    expect(failed.locator(".what")).to_have_text(re.compile(r"^Bash ✕ failed"))
    expect(failed.locator(".who")).to_have_text("general-purpose")
    expect(page.locator("#feed-lines li[data-tone=wait] .what")).to_have_text("waiting for permission: WebFetch")


# ---- costs: the numbers come from a scripted socket (the page's formatting only)


def view_usage(cost: float | None, **extra: Any) -> dict[str, Any]:
    """A usage view field as ingest publishes it."""
    figures = {"input": 1200, "output": 340, "cache_read": 45_000, "cache_write": 800, "messages": 3}
    return {**figures, "cost_usd": cost, "unpriced": False, "basis": "transcript", **extra}


def test_cost_labels_header_and_inspector_read_the_usage_fields(stack: Stack, page: Page) -> None:
    """The toggle labels each node with its subtree (Σ) or own cost; floors read ≥, unpriced never $0; the header
    sums alive sessions and counts what rose since the page opened."""
    sockets: list[WebSocketRoute] = []
    page.route_web_socket("**/stream*", lambda ws: sockets.append(ws))
    page.goto(stack.base_url + "/")
    page.wait_for_function("() => window.agentwatch.stats.connects >= 1")

    def record(agent_id: str, **fields: Any) -> dict[str, Any]:
        main = agent_id == "main"
        return {
            "session_id": "s",
            "agent_id": agent_id,
            "parent_id": None if main else "main",
            "agent_type": "main" if main else "Explore",
            "model": "claude-haiku-4-5",
            "project": "/home/dev/shop" if main else None,
            "spawned_at": 1,
            "last_seen": 1,
            **fields,
        }

    alive = [
        record("main", usage=view_usage(1.0), sub_usage=view_usage(0.25), prompts=3, agents_total=4),
        record("a1", usage=view_usage(0.5, basis="floor"), tools={"Read": 2}),
        record("a2", usage=view_usage(None, unpriced=True)),
    ]
    sockets[0].send(json.dumps({"type": "snapshot", "seq": 1, "epoch": "A", "alive": alive}))
    expect(page.locator("g.node")).to_have_count(3)
    expect(page.locator("#cost-alive")).to_have_text("≥ $1.75")
    expect(page.locator("#cost-window")).to_have_text("$0")
    expect(page.locator("#cost-window-label")).to_have_text("last 1 min")
    expect(page.locator('#session-list li[data-session="s"]')).to_have_text("shop 3 prompts · 2/4 agents · ≥ $1.75")

    labels = page.locator("g.node .cost-label")
    expect(labels).to_have_count(0)
    page.locator("#cost-labels").check()
    expect(page.locator('g.node[data-id="s/main"] .cost-label')).to_have_text("Σ ≥ $1.75")
    expect(page.locator('g.node[data-id="s/main"] .cost-label')).to_be_visible()
    expect(page.locator('g.node[data-id="s/a2"] .cost-label')).to_have_text("Σ unpriced")
    page.locator("#cost-mode").select_option("own")
    expect(page.locator('g.node[data-id="s/main"] .cost-label')).to_have_text("$1.00")
    expect(page.locator('g.node[data-id="s/a1"] .cost-label')).to_have_text("≥ $0.50")

    # Spending seen live counts in the window; the labels follow.
    update = {"type": "agent_update", "session_id": "s", "agent_id": "main", "ts": int(page.evaluate("Date.now()"))}
    sockets[0].send(json.dumps({"type": "event", "seq": 2, "epoch": "A", "data": {**update, "usage": view_usage(1.5)}}))
    expect(page.locator("#cost-window")).to_have_text("$0.50")
    expect(page.locator('g.node[data-id="s/main"] .cost-label')).to_have_text("$1.50")

    page.locator('g.node[data-id="s/a1"] .body').click(force=True)
    expect(page.locator('#inspector .usage tr[data-row="cost"] [data-col="own"]')).to_have_text("≥ $0.50")
    expect(page.locator('#inspector .usage tr[data-row="input"] [data-col="own"]')).to_have_text("1.2k")
    expect(page.locator('#inspector .usage tr[data-row="cache read"] [data-col="subtree"]')).to_have_text("45k")
    expect(field(page, "cost-note")).to_contain_text("floor")
    page.locator("#cost-labels").uncheck()
    expect(page.locator('g.node[data-id="s/main"] .cost-label')).to_be_hidden()


def usd(v: float) -> str:
    """web/usage.js formatUsd."""
    if v >= 100:
        return f"${int(v + 0.5)}"
    return f"${v:.2f}" if v >= 0.1 else f"${v:.3f}"


def tokens(n: int) -> str:
    """web/usage.js formatTokens."""
    if n < 1000:
        return str(n)
    if n < 10_000:
        return f"{n / 1000:.1f}k"
    return f"{int(n / 1000 + 0.5)}k" if n < 1_000_000 else f"{n / 1_000_000:.1f}M"


def test_usage_from_transcripts_in_inspector_header_and_labels(stack: Stack, page: Page, tmp_path: Path) -> None:
    """Transcripts written as Claude Code writes them: an agent's own tokens and cost in the inspector, the session's
    total (an ended agent's figures included) in the header, on the orchestrator's label and in its subtree."""
    w = TranscriptWriter(tmp_path / "projects", SESSION, project="-Users-alex-code-acme-shop")
    w.response(None, "claude-opus-4-5", usage(12, 930, read=42_100, write_5m=3_050))
    w.response(None, "claude-opus-4-5", usage(7, 410, read=45_300))
    for agent, model, n in (
        (EXPLORE, "claude-haiku-4-5", 3),
        (GENERAL, "claude-sonnet-4-5", 4),
        (REVIEWER, "claude-opus-4-5", 2),
    ):
        for i in range(n):
            w.response(agent, model, usage(5 + i, 610 + 13 * i, read=17_900 + 120 * i, write_5m=1_430))
    open_page(page, stack)
    for payload in payloads(GENERAL_STOP):  # Explore ends at its SubagentStop; the other two are still running
        payload["transcript_path"] = str(w.main_path)
        if "agent_transcript_path" in payload:
            payload["agent_transcript_path"] = str(w.agent_path(payload["agent_id"]))
        assert run_hook(json.dumps(payload), stack.events_file).returncode == 0

    everything = expected_usage(w.lines, {line.path for line in w.lines})
    session = page.locator(f'#session-list li[data-session="{SESSION}"]')
    expect(session).to_contain_text(f"· {usd(everything['cost_usd'])}", timeout=30_000)
    expect(page.locator("#cost-alive")).to_have_text(usd(everything["cost_usd"]))
    page.locator("#cost-labels").check()
    expect(node(page, "main").locator(".cost-label")).to_have_text(f"Σ {usd(everything['cost_usd'])}")

    own = expected_usage(w.lines, {w.agent_path(GENERAL)})
    node(page, GENERAL).locator(".body").click(force=True)
    cell = 'tr[data-row="{}"] [data-col="own"]'
    for row, key in (
        ("input", "input"),
        ("output", "output"),
        ("cache read", "cache_read"),
        ("cache write", "cache_write"),
    ):
        expect(page.locator("#inspector .usage " + cell.format(row))).to_have_text(tokens(own[key]))
    expect(page.locator("#inspector .usage " + cell.format("cost"))).to_have_text(usd(own["cost_usd"]))
    expect(field(page, "cost-note")).to_be_hidden()  # from transcripts: exact, not a floor

    page.locator('#inspector [data-field="parent"] button.link').click()
    subtree = page.locator('#inspector .usage tr[data-row="cost"] [data-col="subtree"]')
    expect(subtree).to_have_text(usd(everything["cost_usd"]))
    main_own = expected_usage(w.lines, {w.main_path})
    expect(page.locator("#inspector .usage " + cell.format("cost"))).to_have_text(usd(main_own["cost_usd"]))
