"""The page in a real Chromium against a real relay, ingest and redis-server, driven through the events file."""

from __future__ import annotations

import json
import random
import re
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, WebSocketRoute, expect

from relay import share
from tests.stack import (
    RedisServer,
    Stack,
    fixture_payloads,
    play_fixture,
    run_hook,
    running_stack,
)

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
METRICS = ARTIFACTS / "browser-metrics.json"

SESSION = "7f3c2a91-5b6e-4d0a-9c1e-2f8b4a6d3e17"  # the fixture's session
EXPLORE, GENERAL, REVIEWER = "a3f9c1d27b84e065", "a71be0c94d2f5a38", "ac52d8e6f1097b4a"
# Fixture line indexes: lines [0, SUBAGENTS_BUSY) spawn the three sub-agents and run their first tools;
# [SUBAGENTS_BUSY, AFTER_PERMISSION) end Explore, fail a Bash in general-purpose and raise a permission prompt.
SUBAGENTS_BUSY = 28
AFTER_PERMISSION = 33
FILLS = {
    "main": "rgb(251, 191, 36)",
    "haiku": "rgb(59, 130, 246)",
    "sonnet": "rgb(34, 197, 94)",
    "opus": "rgb(239, 68, 68)",
}
XSS = "<img src=x onerror=alert(1)>"
# What a reader of the page sees; compared across pages and across a relay restart.
GRAPH_JS = """() => [...document.querySelectorAll('g.node')].map(g => [
  g.dataset.id, g.dataset.modelFamily, g.dataset.state, g.dataset.pulses, g.dataset.fails]).sort()"""

expect.set_options(timeout=15_000)

reliability = pytest.mark.reliability


# ---- fixtures and helpers


class Viewer:
    """One browser page on the relay, recording what must never happen: script errors and dialogs."""

    def __init__(self, browser: Browser, base_url: str, width: int = 1280, height: int = 720) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", self._console)
        self.page.on("dialog", self._dialog)
        self.base_url = base_url

    def _console(self, message: Any) -> None:
        # A refused connection while the relay is down is expected; the badge reports it.
        if message.type == "error" and not message.text.startswith("WebSocket connection to"):
            self.errors.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self) -> Page:
        self.page.goto(self.base_url + "/")
        expect(self.page.locator("#status")).to_have_attribute("data-status", "connected")
        return self.page

    def node(self, agent_id: str, session: str = SESSION) -> Any:
        return self.page.locator(f'g.node[data-id="{session}/{agent_id}"]')

    def graph(self) -> list[list[str]]:
        return self.page.evaluate(GRAPH_JS)  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return self.page.evaluate("() => window.agentwatch.stats")  # type: ignore[no-any-return]

    def counters(self, alive: int, spawned: int, tools: int, done: int) -> None:
        for name, value in (("alive", alive), ("spawned", spawned), ("tools", tools), ("done", done)):
            expect(self.page.locator(f"#count-{name}")).to_have_text(str(value))

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.dialogs == [], self.dialogs

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def viewers(browser: Browser) -> Iterator[Callable[..., Viewer]]:
    opened: list[Viewer] = []

    def make(base_url: str, width: int = 1280, height: int = 720) -> Viewer:
        viewer = Viewer(browser, base_url, width, height)
        opened.append(viewer)
        return viewer

    try:
        yield make
    finally:
        for viewer in opened:
            viewer.close()


def record_metric(name: str, value: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    metrics = json.loads(METRICS.read_text()) if METRICS.exists() else {}
    metrics[name] = value
    METRICS.write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"{name}: {value}")


def ingested_lines(redis_server: RedisServer, stack: Stack) -> int:
    return int(redis_server.cli("HGET", f"{stack.prefix}:stats", "lines").strip() or 0)


def wait_ingested(redis_server: RedisServer, stack: Stack, lines: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while ingested_lines(redis_server, stack) < lines:
        assert time.monotonic() < deadline, f"ingest read {ingested_lines(redis_server, stack)} of {lines} lines"
        time.sleep(0.05)


def relay_seq(stack: Stack) -> int:
    with urllib.request.urlopen(stack.base_url + "/stats", timeout=5) as r:
        return int(json.load(r)["seq"])


class Scenario:
    """Hook payloads of made-up sessions, shaped like the fixture's, for the load and layout tests."""

    def __init__(self, session: str, project: str) -> None:
        self.session = session
        self.project = project
        self.types: dict[str, str] = {}
        self.parents: dict[str, str | None] = {}
        self.calls = 0

    def _p(self, hook: str, agent_id: str | None = None, **fields: Any) -> str:
        payload = {"session_id": self.session, "cwd": f"/home/dev/{self.project}", "hook_event_name": hook, **fields}
        if agent_id:
            payload |= {"agent_id": agent_id, "agent_type": self.types[agent_id]}
        return json.dumps(payload)

    def start(self) -> list[str]:
        return [self._p("SessionStart", source="startup", model="claude-opus-4-5")]

    def spawn(
        self, agent_id: str, agent_type: str, model: str, description: str, parent: str | None = None
    ) -> list[str]:
        spawn_input = {"description": description, "prompt": "...", "subagent_type": agent_type, "model": model}
        pre = self._p("PreToolUse", parent, tool_name="Agent", tool_use_id=f"toolu_{agent_id}", tool_input=spawn_input)
        self.types[agent_id] = agent_type
        self.parents[agent_id] = parent
        return [pre, self._p("SubagentStart", agent_id)]

    def tool(self, agent_id: str | None, tool: str, outcome: str | None = None) -> list[str]:
        self.calls += 1
        call = {"tool_name": tool, "tool_use_id": f"toolu_{self.session[:4]}_{self.calls}", "tool_input": {}}
        lines = [self._p("PreToolUse", agent_id, **call)]
        if outcome == "fail":
            lines.append(self._p("PostToolUseFailure", agent_id, **call, error="Exit code 1"))
        elif outcome == "done":
            lines.append(self._p("PostToolUse", agent_id, **call, tool_response={}))
        return lines

    def finish(self, agent_id: str) -> list[str]:
        """A foreground sub-agent returning: its stop, then its parent's Agent call completing."""
        response = {"status": "completed", "agentId": agent_id, "content": [{"type": "text", "text": "done"}]}
        call = {"tool_name": "Agent", "tool_use_id": f"toolu_{agent_id}", "tool_response": response}
        returned = self._p("PostToolUse", self.parents[agent_id], **call)
        return [self._p("SubagentStop", agent_id, stop_hook_active=False), returned]

    def permission(self, tool: str) -> list[str]:
        message = f"Claude needs your permission to use {tool}"
        return [self._p("Notification", notification_type="permission_prompt", message=message, title="Permission")]


def append_lines(events_file: Path, payloads: list[str]) -> None:
    """Many lines at once, stamped as the hook would: faster than one hook process per line under load."""
    now = int(time.time() * 1000)
    text = "".join(json.dumps({**json.loads(p), "_received_at": now}) + "\n" for p in payloads)
    with events_file.open("a") as f:
        f.write(text)


# ---- the fixture session


def test_fixture_session_plays_through(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    """Orchestrator, three coloured sub-agents, pulses on the agent that made each call, a failure, then nothing."""
    viewer = viewers(stack.base_url)
    page = viewer.open()
    play_fixture(stack.events_file, SUBAGENTS_BUSY)

    viewer.counters(alive=4, spawned=3, tools=11, done=0)
    expect(page.locator("g.node")).to_have_count(4)
    for agent_id, family in (("main", "main"), (EXPLORE, "haiku"), (GENERAL, "sonnet"), (REVIEWER, "opus")):
        node = viewer.node(agent_id)
        expect(node).to_have_attribute("data-model-family", family)
        expect(node.locator(".body")).to_have_css("fill", FILLS[family])
    # Main ran Glob, Read and three Agent calls; each sub-agent's calls pulse the sub-agent, not main.
    for agent_id, pulses in (("main", 5), (EXPLORE, 3), (GENERAL, 1), (REVIEWER, 2)):
        expect(viewer.node(agent_id)).to_have_attribute("data-pulses", str(pulses))
    expect(viewer.node(EXPLORE).locator(".label")).to_have_text("Explore")

    play_fixture(stack.events_file, AFTER_PERMISSION, start=SUBAGENTS_BUSY)
    expect(viewer.node(EXPLORE)).to_have_count(0)  # flashed, faded, gone
    expect(viewer.node(GENERAL)).to_have_attribute("data-fails", "1")
    expect(viewer.node(REVIEWER)).to_have_attribute("data-fails", "0")
    # The prompt names WebFetch, which only the reviewer has open: it waits for the user, visibly.
    expect(page.locator('g.node[data-state="waiting"]')).to_have_count(1)
    expect(viewer.node(REVIEWER)).to_have_attribute("data-state", "waiting")
    expect(viewer.node(REVIEWER).locator(".ring")).to_be_visible()
    expect(viewer.node(REVIEWER).locator(".wait-text")).to_have_text("waiting for you: WebFetch")
    viewer.counters(alive=3, spawned=3, tools=12, done=1)
    stats = viewer.stats()
    assert stats["flashes"] == 1 and stats["fails"] == 1, stats

    play_fixture(stack.events_file, start=AFTER_PERMISSION)
    expect(page.locator("g.node")).to_have_count(0)
    viewer.counters(alive=0, spawned=3, tools=15, done=3)
    expect(page.locator("#last-event-age")).to_have_text(re.compile(r"^\d+ s ago$"))
    assert viewer.stats()["duplicates"] == 0
    viewer.assert_clean()


# What a reader sees of every node: id, colour, state, label and waiting mark (no animation counters).
PICTURE_JS = """() => [...document.querySelectorAll('g.node')].map(g => [g.dataset.id, g.dataset.modelFamily,
  g.dataset.state, g.dataset.waiting || '', g.querySelector('.label').textContent]).sort()"""


@reliability(
    "Real Claude Code installs",
    "a page open from the start equals a page opened at the end",
    injected="sub-agents re-keyed from their spawn ids, a model resolved after the spawn, a permission prompt, "
    "an old-version Task spawn without ids; one page open throughout, one opened at the end",
    checked="same nodes, colours, labels and waiting marks on both pages; the live page recoloured in place",
)
def test_a_page_from_the_start_equals_a_page_opened_at_the_end(
    stack: Stack, viewers: Callable[..., Viewer], redis_server: RedisServer
) -> None:
    early = viewers(stack.base_url)
    page = early.open()
    play_fixture(stack.events_file, AFTER_PERMISSION)
    session = "9e1d7c55-0b3a-4f6e-8d21-5a7c3e9f1b04"

    def hook(**payload: Any) -> None:
        result = run_hook(json.dumps({"session_id": session, "cwd": "/home/dev/shop", **payload}), stack.events_file)
        assert result.returncode == 0, result

    # Current Claude Code: a background agent with no model input; its model arrives with PostToolUse.
    spawn = {"description": "Audit deps", "prompt": "p", "subagent_type": "auditor", "run_in_background": True}
    hook(hook_event_name="PreToolUse", tool_name="Agent", tool_use_id="toolu_bg1", tool_input=spawn)
    stand_in = early.node("toolu_bg1", session)
    expect(stand_in).to_have_attribute("data-model-family", "other")
    launched = {"status": "async_launched", "agentId": "bg1real", "resolvedModel": "claude-sonnet-4-5"}
    hook(hook_event_name="PostToolUse", tool_name="Agent", tool_use_id="toolu_bg1", tool_response=launched)
    real = early.node("bg1real", session)
    expect(real).to_have_attribute("data-model-family", "sonnet")
    expect(real.locator(".body")).to_have_css("fill", FILLS["sonnet"])
    expect(stand_in).to_have_count(0)
    # Old Claude Code: Task without tool_use_id, seen only from its spawn call.
    old = {"description": "Search", "prompt": "p", "subagent_type": "Explore"}
    hook(hook_event_name="PreToolUse", tool_name="Task", tool_input=old)
    expect(page.locator(f'g.node[data-id^="{session}/task-"]')).to_have_count(1)
    wait_ingested(redis_server, stack, AFTER_PERMISSION + 3)

    late = viewers(stack.base_url)
    late.open()
    expect(late.page.locator('g.node[data-id^="9e1d"]')).to_have_count(3)
    expect(page.locator('g.node[data-state="done"]')).to_have_count(0)  # Explore's flash and fade are over
    early_picture = page.evaluate(PICTURE_JS)
    assert late.page.evaluate(PICTURE_JS) == early_picture
    assert [n for n in early_picture if n[3]] == [
        [f"{SESSION}/{REVIEWER}", "opus", "waiting", "permission", "security-reviewer"]
    ]
    ids = [node[0] for node in early_picture]
    assert len(ids) == len(set(ids)) == 6  # main, general, reviewer; main, bg1real, the old Task
    early.assert_clean()
    late.assert_clean()


@reliability(
    "Faults",
    "relay restart under a page",
    injected="the relay stopped and started with a page open",
    checked="reconnecting then connected; the same graph, no duplicate nodes",
)
def test_mid_session_page_and_relay_restart(
    stack: Stack, viewers: Callable[..., Viewer], redis_server: RedisServer
) -> None:
    """A late page draws the snapshot; across relay restarts it resumes: nothing lost, nothing drawn twice."""
    play_fixture(stack.events_file, SUBAGENTS_BUSY)
    wait_ingested(redis_server, stack, SUBAGENTS_BUSY)
    viewer = viewers(stack.base_url)
    page = viewer.open()
    expect(page.locator("g.node")).to_have_count(4)
    viewer.counters(alive=4, spawned=3, tools=11, done=0)
    expect(viewer.node(REVIEWER)).to_have_attribute("data-model-family", "opus")
    before = viewer.graph()

    status = page.locator("#status")
    stack.restart_relay(before_start=lambda: expect(status).to_have_attribute("data-status", "reconnecting"))
    expect(status).to_have_attribute("data-status", "connected")
    expect(status).to_have_text("● connected")
    assert viewer.graph() == before

    # Events that happen while the relay is down arrive after it is back, once each.
    def miss_some_events() -> None:
        expect(status).to_have_attribute("data-status", "reconnecting")
        expect(status).to_have_text("○ reconnecting")
        play_fixture(stack.events_file, AFTER_PERMISSION, start=SUBAGENTS_BUSY)
        wait_ingested(redis_server, stack, AFTER_PERMISSION)

    stack.restart_relay(before_start=miss_some_events)
    expect(status).to_have_attribute("data-status", "connected")
    expect(viewer.node(EXPLORE)).to_have_count(0)
    expect(viewer.node(GENERAL)).to_have_attribute("data-fails", "1")
    expect(viewer.node(REVIEWER)).to_have_attribute("data-state", "waiting")
    viewer.counters(alive=3, spawned=3, tools=12, done=1)
    ids = [row[0] for row in viewer.graph()]
    assert len(ids) == len(set(ids)) == 3
    stats = viewer.stats()
    assert stats["connects"] == 3 and stats["duplicates"] == 0 and stats["resyncs"] == 0, stats
    page.wait_for_function("s => window.agentwatch.stats.lastSeq === s", arg=relay_seq(stack))
    viewer.assert_clean()


def test_two_pages_see_the_same_graph(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    """Every viewer gets the same events in the same order, so the same graph."""
    first, second = viewers(stack.base_url), viewers(stack.base_url)
    first.open()
    second.open()
    play_fixture(stack.events_file, AFTER_PERMISSION)
    for viewer in (first, second):
        viewer.counters(alive=3, spawned=3, tools=12, done=1)
        expect(viewer.node(GENERAL)).to_have_attribute("data-fails", "1")
        expect(viewer.node(EXPLORE)).to_have_count(0)
    assert first.graph() == second.graph()
    assert len(first.graph()) == 3
    assert first.stats()["lastSeq"] == second.stats()["lastSeq"]
    first.assert_clean()
    second.assert_clean()


@reliability(
    "Security",
    "payload text is never HTML",
    injected="an agent description, type, tool name and project of <img src=x onerror=alert(1)>",
    checked="rendered literally in Chromium; no img element, no dialog",
)
def test_payload_text_renders_literally(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    """Descriptions, agent types, tool names and project names are text: no element, no script, no dialog."""
    viewer = viewers(stack.base_url)
    page = viewer.open()
    # Every floating label's text, caught as it appears (they fade within a second).
    page.evaluate("""() => {
      window.floated = [];
      new MutationObserver(ms => ms.forEach(m => m.addedNodes.forEach(n => window.floated.push(n.textContent))))
        .observe(document.getElementById('floaters'), {childList: true});
    }""")
    evil = Scenario("xss-session", XSS)
    payloads = evil.start() + evil.spawn("evil1", XSS, "sonnet", XSS) + evil.tool("evil1", XSS, "done")
    for payload in payloads:
        assert run_hook(payload, stack.events_file).returncode == 0

    node = viewer.node("evil1", "xss-session")
    expect(node).to_have_attribute("data-pulses", "1")
    expect(node.locator(".label")).to_have_text(XSS)
    expect(viewer.node("main", "xss-session").locator(".label")).to_have_text(XSS)
    page.wait_for_function("x => window.floated.includes(x)", arg=XSS)
    node.locator(".body").hover(force=True)
    expect(page.locator("#tooltip")).to_contain_text(XSS)
    assert page.locator("#tooltip div").nth(1).text_content() == XSS
    assert page.locator("img").count() == 0
    assert page.evaluate("() => document.body.innerHTML.includes('<img')") is False
    viewer.assert_clean()


def test_several_sessions_do_not_overlap_busy_screenshot(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    """Three sessions, nested sub-agents, tools, a failure and a permission prompt; orchestrators far apart."""
    viewer = viewers(stack.base_url, 1440, 900)
    page = viewer.open()
    rng = random.Random(7)
    kinds = [("Explore", "claude-haiku-4-5"), ("general-purpose", "sonnet"), ("security-reviewer", "opus")]
    kinds.append(("code-reviewer", "inherit"))
    sessions = [Scenario(f"busy-{i}", name) for i, name in enumerate(["acme-shop", "billing-api", "docs-site"])]
    payloads: list[str] = []
    agents: dict[str, list[str]] = {}
    for i, s in enumerate(sessions):
        payloads += s.start()
        agents[s.session] = []
        for j in range(4 + 3 * i):
            agent_type, model = kinds[j % len(kinds)]
            parent = agents[s.session][j // 3] if j >= 4 else None  # later ones are nested
            agent_id = f"{s.session}-a{j}"
            payloads += s.spawn(agent_id, agent_type, model, f"{agent_type} task {j}", parent)
            agents[s.session].append(agent_id)
    waiting = agents["busy-1"][2]
    payloads += sessions[1].tool(waiting, "Bash") + sessions[1].permission("Bash")
    append_lines(stack.events_file, payloads)
    expect(page.locator("g.node")).to_have_count(3 + 4 + 7 + 10)
    # Nested sub-agents hang from the sub-agent that spawned them, the others from their orchestrator.
    nested = page.locator('line.link[data-child="busy-2/busy-2-a5"]')
    expect(nested).to_have_attribute("data-parent", "busy-2/busy-2-a1")
    expect(page.locator('line.link[data-child="busy-2/busy-2-a3"]')).to_have_attribute("data-parent", "busy-2/main")
    expect(page.locator('g.node[data-state="waiting"]')).to_have_count(1)

    stop = threading.Event()

    def keep_busy() -> None:
        while not stop.is_set():
            s = rng.choice([sessions[0], sessions[2]])
            agent = rng.choice([None, *agents[s.session]])
            outcome = "fail" if rng.random() < 0.1 else "done"
            append_lines(
                stack.events_file, s.tool(agent, rng.choice(["Read", "Grep", "Bash", "Edit", "Glob"]), outcome)
            )
            time.sleep(0.08)

    writer = threading.Thread(target=keep_busy, daemon=True)
    writer.start()
    try:
        page.wait_for_function("() => document.querySelectorAll('#floaters text').length >= 3")
        page.wait_for_function("() => window.agentwatch.stats.fails >= 1")
        page.wait_for_timeout(1500)  # let the layout settle for a readable picture
        page.wait_for_function("() => document.querySelectorAll('#floaters text').length >= 2")
        page.wait_for_function("() => document.querySelector('#floaters text.fail')", polling=20)
        append_lines(stack.events_file, sessions[2].finish(agents["busy-2"][1]))
        page.wait_for_function("() => document.querySelector('g.node[data-outcome=success]')", polling=20)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "busy-3-sessions.png")
    finally:
        stop.set()
        writer.join()

    centres = page.evaluate("""() => [...document.querySelectorAll('g.node[data-model-family="main"] .body')]
      .map(c => { const r = c.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })""")
    assert len(centres) == 3
    for i, (x1, y1) in enumerate(centres):
        assert 0 < x1 < 1440 and 0 < y1 < 900
        for x2, y2 in centres[i + 1 :]:
            assert ((x1 - x2) ** 2 + (y1 - y2) ** 2) ** 0.5 > 200, centres
    viewer.assert_clean()


# ---- load


def test_load_200_agents_100_events_per_second(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    """200 alive agents and 100 events/s for 5 s: frame rate measured with requestAnimationFrame."""
    viewer = viewers(stack.base_url)
    page = viewer.open()
    load = Scenario("load-session", "big-refactor")
    kinds = [("Explore", "haiku"), ("general-purpose", "sonnet"), ("security-reviewer", "opus"), ("custom", "gpt")]
    agent_ids = [f"load{i:03d}" for i in range(200)]
    payloads = load.start()
    for i, agent_id in enumerate(agent_ids):
        agent_type, model = kinds[i % 4]
        parent = agent_ids[i % 20] if i >= 20 else None
        payloads += load.spawn(agent_id, agent_type, model, f"shard {i}", parent)
    append_lines(stack.events_file, payloads)
    expect(page.locator("g.node")).to_have_count(201)
    page.wait_for_function("() => window.agentwatch.stats.alive === 201")

    rng = random.Random(42)
    seconds, rate = 6.0, 100
    stop = threading.Event()
    written = [0]

    def write_load() -> None:
        started = time.monotonic()
        batch = 0
        while not stop.is_set() and time.monotonic() - started < seconds:
            lines: list[str] = []
            while len(lines) < rate // 10:
                r = rng.random()
                outcome = "fail" if r < 0.05 else "done" if r < 0.35 else None
                lines += load.tool(rng.choice(agent_ids), rng.choice(["Read", "Grep", "Bash", "Edit"]), outcome)
            append_lines(stack.events_file, lines)
            written[0] += len(lines)
            batch += 1
            time.sleep(max(0.0, started + batch * 0.1 - time.monotonic()))

    before = viewer.stats()
    writer = threading.Thread(target=write_load, daemon=True)
    writer.start()
    try:
        page.wait_for_timeout(500)
        start = page.evaluate(
            "() => [window.agentwatch.stats.frames, performance.now(), window.agentwatch.stats.events]"
        )
        per_second = []
        for _ in range(5):
            page.wait_for_timeout(1000)
            per_second.append(viewer.stats()["fps"])
        end = page.evaluate("() => [window.agentwatch.stats.frames, performance.now(), window.agentwatch.stats.events]")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "load-200-agents.png")
    finally:
        stop.set()
        writer.join()

    fps = (end[0] - start[0]) * 1000 / (end[1] - start[1])
    events_per_s = (end[2] - start[2]) * 1000 / (end[1] - start[1])
    after = viewer.stats()
    record_metric("load_fps_mean", round(fps, 1))
    record_metric("load_fps_per_second", per_second)
    record_metric("load_events_per_second_applied", round(events_per_s, 1))
    record_metric("load_pulses_drawn", after["pulses"] - before["pulses"])
    record_metric("load_pulses_coalesced", after["coalesced"] - before["coalesced"])
    record_metric("load_labels_dropped_by_cap", after["labelsDropped"] - before["labelsDropped"])
    # The page keeps up: it ends exactly where the relay is, with every agent still drawn once.
    page.wait_for_function("s => window.agentwatch.stats.lastSeq === s", arg=relay_seq(stack))
    assert events_per_s >= 80, f"only {events_per_s:.0f} events/s reached the page"
    assert written[0] >= 550
    expect(page.locator("g.node")).to_have_count(201)
    assert page.evaluate("() => document.querySelectorAll('#floaters text').length") <= 30
    # Measured 60 fps here (rAF-capped); 30 is the requirement and holds with margin on 2 cores.
    assert fps >= 30, f"{fps:.1f} fps under load ({per_second})"
    viewer.assert_clean()


def test_event_to_pulse_latency(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    """From the hook writing a PreToolUse to the pulse starting on the page, through ingest, Redis and relay."""
    viewer = viewers(stack.base_url)
    page = viewer.open()
    play_fixture(stack.events_file, SUBAGENTS_BUSY)
    expect(page.locator("g.node")).to_have_count(4)
    base = json.loads(fixture_payloads()[16])  # a PreToolUse inside the Explore sub-agent
    latencies = []
    for i in range(10):
        probe = f"Probe{i}"
        payload = json.dumps({**base, "tool_name": probe, "tool_use_id": f"toolu_probe_{i}"})
        sent = time.time() * 1000
        assert run_hook(payload, stack.events_file).returncode == 0
        page.wait_for_function("p => window.agentwatch.stats.lastPulse?.label === p", arg=probe)
        pulse = viewer.stats()["lastPulse"]
        assert pulse["id"] == f"{SESSION}/{EXPLORE}"
        latencies.append(pulse["at"] - sent)
    record_metric("event_to_pulse_ms_median", round(statistics.median(latencies)))
    record_metric("event_to_pulse_ms_max", round(max(latencies)))
    assert max(latencies) < 2000, latencies
    viewer.assert_clean()


# ---- connection handling, layout, failure messages


def test_gap_duplicate_reset_and_slow_close(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    """Scripted socket: a gap reconnects with since/epoch, a duplicate is not drawn, reset redraws, 4008 resumes."""
    viewer = viewers(stack.base_url)
    page = viewer.page
    sockets: list[WebSocketRoute] = []
    page.route_web_socket("**/stream*", lambda ws: sockets.append(ws))

    def record(agent_id: str, agent_type: str = "Explore", model: str = "haiku") -> dict[str, Any]:
        main = agent_id == "main"
        return {
            "session_id": "s",
            "agent_id": agent_id,
            "parent_id": None if main else "main",
            "agent_type": agent_type,
            "model": model,
            "description": None,
            "tool_use_id": None,
            "spawned_at": 1,
            "last_seen": 1,
            "tool_count": 0,
        }

    def event(seq: int, epoch: str = "A", **data: Any) -> str:
        return json.dumps({"type": "event", "seq": seq, "epoch": epoch, "data": {"ts": 1, "session_id": "s", **data}})

    def tool(seq: int, agent_id: str) -> str:
        return event(seq, type="tool_use", agent_id=agent_id, tool="Read", tool_use_id=f"t{seq}")

    def connection(n: int) -> WebSocketRoute:
        page.wait_for_function("n => window.agentwatch.stats.connects >= n", arg=n)
        return sockets[n - 1]

    page.goto(stack.base_url + "/")
    first = connection(1)
    assert "since" not in first.url
    first.send(json.dumps({"type": "snapshot", "seq": 5, "epoch": "A", "alive": [record("main"), record("a1")]}))
    first.send(tool(6, "a1"))
    expect(viewer.node("a1", "s")).to_have_attribute("data-pulses", "1")
    first.send(tool(8, "a1"))  # seq 7 never came

    second = connection(2)
    assert second.url.endswith("/stream?since=6&epoch=A"), second.url
    assert viewer.stats()["resyncs"] == 1
    second.send(tool(6, "a1"))  # already drawn
    second.send(tool(7, "a1"))
    second.send(tool(8, "a1"))
    expect(viewer.node("a1", "s")).to_have_attribute("data-pulses", "3")
    assert viewer.stats()["duplicates"] == 1

    second.close(code=4008, reason="slow")
    third = connection(3)
    assert third.url.endswith("/stream?since=8&epoch=A"), third.url
    reset = {"type": "snapshot", "seq": 2, "epoch": "B", "alive": [record("main"), record("b1", "Plan", "opus")]}
    third.send(json.dumps({**reset, "reset": True}))
    expect(viewer.node("a1", "s")).to_have_count(0)
    expect(viewer.node("b1", "s")).to_have_attribute("data-model-family", "opus")
    expect(page.locator("g.node")).to_have_count(2)
    third.send(event(3, epoch="B", type="tool_fail", agent_id="b1", tool="Bash"))
    expect(viewer.node("b1", "s")).to_have_attribute("data-fails", "1")
    assert viewer.stats()["lastSeq"] == 3

    # Connections that open and close without a frame (quiet restarts) must not pile up backoff as if down.
    for n in range(4, 9):
        sockets[-1].close(code=1012, reason="restarting")
        expect(page.locator("#status")).to_have_attribute("data-status", "reconnecting")
        assert connection(n).url.endswith("/stream?since=3&epoch=B")
    expect(page.locator("#status")).to_have_attribute("data-status", "connected")
    viewer.assert_clean()


def test_status_goes_disconnected_when_the_relay_stays_away(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    """Backoff keeps retrying; after a few failures the badge stops promising a reconnect."""
    viewer = viewers(stack.base_url)
    page = viewer.open()
    stack.relay.stop()
    expect(page.locator("#status")).to_have_attribute("data-status", "reconnecting")
    expect(page.locator("#status")).to_have_text("✕ disconnected", timeout=30_000)
    viewer.assert_clean()


@pytest.mark.parametrize(("width", "height"), [(800, 600), (1280, 720), (3840, 2160)])
def test_layout_fits_narrow_to_4k(stack: Stack, viewers: Callable[..., Viewer], width: int, height: int) -> None:
    """Overlays stay inside the window and apart; text stays readable; labels name things, not just colours."""
    play_fixture(stack.events_file, SUBAGENTS_BUSY)
    viewer = viewers(stack.base_url, width, height)
    page = viewer.open()
    expect(page.locator("g.node")).to_have_count(4)
    # One session: its orchestrator sits pinned in the middle of the window.
    main = page.locator(f'g.node[data-id="{SESSION}/main"] .body').bounding_box()
    assert main is not None
    assert abs(main["x"] + main["width"] / 2 - width / 2) < 2 and abs(main["y"] + main["height"] / 2 - height / 2) < 2
    boxes = {sel: page.locator(sel).bounding_box() for sel in ("#status", "#legend", "#counters", "h1")}
    for sel, box in boxes.items():
        assert box is not None, sel
        assert box["x"] >= 0 and box["y"] >= 0, (sel, box)
        assert box["x"] + box["width"] <= width and box["y"] + box["height"] <= height, (sel, box)

    def apart(a: dict[str, float], b: dict[str, float]) -> bool:
        return (
            a["x"] + a["width"] <= b["x"]
            or b["x"] + b["width"] <= a["x"]
            or a["y"] + a["height"] <= b["y"]
            or b["y"] + b["height"] <= a["y"]
        )

    names = list(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert apart(boxes[a], boxes[b]), (a, boxes[a], b, boxes[b])
    smallest_ui = page.evaluate("""() => Math.min(...['#counters', '#legend', '#status']
      .map(s => parseFloat(getComputedStyle(document.querySelector(s)).fontSize)))""")
    assert smallest_ui >= 12
    label = page.locator(f'g.node[data-id="{SESSION}/{EXPLORE}"] .label').bounding_box()
    assert label is not None and label["height"] >= 10
    expect(page.locator("#legend")).to_contain_text("haiku")
    expect(page.locator("#legend")).to_contain_text("✕ failure")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"fixture-{width}x{height}.png")
    viewer.assert_clean()


def test_missing_d3_says_how_to_fix_it(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    viewer = viewers(stack.base_url)
    viewer.page.route("**/vendor/d3.js", lambda route: route.fulfill(status=404, body="not here"))
    viewer.page.goto(stack.base_url + "/")
    expect(viewer.page.locator("#fatal")).to_have_text("d3 missing: run make up")
    expect(viewer.page.locator("#fatal")).to_be_visible()


@reliability(
    "Security",
    "share link in the browser",
    injected="a page opened from a share link for one of two running sessions, valid for 8 s",
    checked="only that session's nodes, live; a banner naming its project and counting down; "
    "at expiry the banner says so, the page stops reconnecting and stops updating",
)
def test_share_link_page_shows_one_session_until_it_expires(
    redis_server: RedisServer, events_file: Path, viewers: Callable[..., Viewer], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "browser-share-secret"
    monkeypatch.setenv("AGENTWATCH_TOKEN", secret)  # the relay subprocess inherits it
    events_file.parent.mkdir(parents=True, exist_ok=True)
    events_file.touch()
    with running_stack(redis_server.url, events_file) as stack:
        shop, billing = Scenario("share-a", "acme-shop"), Scenario("share-b", "billing-api")
        payloads = shop.start() + shop.spawn("a-1", "Explore", "claude-haiku-4-5", "map the module")
        payloads += billing.start() + billing.spawn("b-1", "Explore", "claude-haiku-4-5", "map the other module")
        append_lines(stack.events_file, payloads)
        wait_ingested(redis_server, stack, 6)
        expires = int(time.time()) + 8
        viewer = viewers(stack.base_url)
        page = viewer.page
        page.goto(f"{stack.base_url}/?share={share.sign(secret, shop.session, expires)}")
        banner, nodes = page.locator("#share"), page.locator("g.node")
        expect(page.locator("#status")).to_have_attribute("data-status", "connected")
        expect(nodes).to_have_count(2)
        expect(page.locator('g.node[data-id="share-a/a-1"]')).to_have_count(1)
        expect(banner).to_contain_text("shared view of acme-shop, expires in ")
        append_lines(
            stack.events_file,
            billing.spawn("b-2", "Plan", "sonnet", "plan") + shop.spawn("a-2", "Plan", "sonnet", "plan"),
        )
        expect(page.locator('g.node[data-id="share-a/a-2"]')).to_have_count(1)
        expect(nodes).to_have_count(3)
        assert page.locator('g.node[data-id^="share-b/"]').count() == 0

        expect(banner).to_have_text("shared view of acme-shop: the link has expired")
        expect(page.locator("#status")).to_have_attribute("data-status", "expired")
        assert time.time() >= expires
        append_lines(stack.events_file, shop.spawn("a-3", "Plan", "sonnet", "after the end"))
        wait_ingested(redis_server, stack, 12)
        page.wait_for_timeout(2000)
        expect(nodes).to_have_count(3)
        assert viewer.stats()["connects"] == 1  # no reconnect after the relay's 4401
        viewer.assert_clean()
