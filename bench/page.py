"""The page in headless Chromium (the approach of tests/test_browser.py): frame rate with 200 alive agents and
100 events/s, and the time from a line's append to its pulse being started on the page. Then the same load on a
page with its panels open: the inspector on one agent, the activity feed, and tool satellites on every agent
(8 tools each).

The page exposes window.agentwatch.stats: `frames` (requestAnimationFrame callbacks), `lastPulse` = {id, label,
at: Date.now() when the pulse is played in a frame}. Lines are appended to the events file directly (the hook's
own cost is section 1), with _received_at stamped as the hook does.
"""

from __future__ import annotations

import json
import random
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from bench.baseline import Baseline
from bench.common import log, median, percentile
from bench.harness import system
from tests.stack import CHROMIUM, CHROMIUM_ARGS, RedisServer

SESSION = "page-bench-session"
KINDS = [("Explore", "haiku"), ("general-purpose", "sonnet"), ("security-reviewer", "opus"), ("custom", "gpt")]
TOOLS = ["Read", "Grep", "Bash", "Edit"]
# The panels cell: every agent has used these eight, so it wears eight satellites, and the load calls them all.
PANEL_TOOLS = [*TOOLS, "Glob", "Write", "WebFetch", "TodoWrite"]
# What the panels cell opens before it measures, as the page remembers it (localStorage, read at start-up).
PANEL_SETTINGS = {"agentwatch.tools": "on", "agentwatch.feed": "open"}
FULL: dict[str, Any] = {"agents": 200, "rate": 100, "seconds": 5, "probes": 20}
SMOKE: dict[str, Any] = {"agents": 20, "rate": 50, "seconds": 1, "probes": 3}


def _line(hook: str, agent: str | None = None, agent_type: str | None = None, **fields: Any) -> str:
    payload: dict[str, Any] = {"session_id": SESSION, "cwd": "/home/dev/big-refactor", "hook_event_name": hook}
    if agent:
        payload |= {"agent_id": agent, "agent_type": agent_type}
    payload |= fields
    payload["_received_at"] = int(time.time() * 1000)
    return json.dumps(payload) + "\n"


def _append(path: Path, lines: list[str]) -> None:
    with path.open("a") as f:
        f.write("".join(lines))


def setup_lines(agents: int) -> tuple[list[str], dict[str, str]]:
    lines = [_line("SessionStart", source="startup", model="claude-opus-4-5")]
    types: dict[str, str] = {}
    ids = [f"load{i:03d}" for i in range(agents)]
    for i, agent in enumerate(ids):
        agent_type, model = KINDS[i % 4]
        parent = ids[i % 20] if i >= 20 else None
        spawn = {"description": f"shard {i}", "prompt": "...", "subagent_type": agent_type, "model": model}
        lines.append(
            _line(
                "PreToolUse",
                parent,
                types.get(parent or ""),
                tool_name="Agent",
                tool_use_id=f"toolu_{agent}",
                tool_input=spawn,
            )
        )
        types[agent] = agent_type
        lines.append(_line("SubagentStart", agent, agent_type))
    return lines, types


def run(server: RedisServer, work: Path, smoke: bool, base: Baseline) -> dict[str, Any]:
    plan = SMOKE if smoke else FULL
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        return {"plan": plan, "skipped": f"{CHROMIUM} is not installed"}
    from playwright.sync_api import sync_playwright

    lines, types = setup_lines(plan["agents"])
    agents = list(types)
    with system("agentwatch", server, work) as sysm, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            _fill(page, sysm.bases[0], sysm.events_file, lines, plan)
            log(f"page: {plan['agents'] + 1} agents alive, {plan['rate']} events/s for {plan['seconds']} s")
            load = _load(page, sysm.events_file, agents, types, plan)
            log(f"page: {plan['probes']} event-to-pulse probes")
            probes = _probes(page, sysm.events_file, agents[0], types[agents[0]], plan["probes"])
            page.context.close()  # one page at a time: the next cell has the renderer to itself
            log(f"page: panels open, {plan['agents']} agents x {len(PANEL_TOOLS)} tools, {plan['rate']} events/s")
            panels = _panels(browser, sysm.bases[0], sysm.events_file, agents, types, plan)
            beside = _baseline(browser, server, work, base, lines, agents, types, plan)
        finally:
            browser.close()
    return {"plan": plan, **load, **probes, "page_errors": errors, "panels": panels, "baseline": beside}


def _fill(page: Any, base: str, path: Path, lines: list[str], plan: dict[str, Any]) -> None:
    """Open the page, then start the set-up's agents and wait until the page shows them all."""
    page.goto(base + "/")
    page.wait_for_function("() => window.agentwatch && window.agentwatch.stats.status === 'connected'")
    _append(path, lines)
    page.wait_for_function(f"() => window.agentwatch.stats.alive === {plan['agents'] + 1}", timeout=30_000)
    page.wait_for_timeout(1000)


def _baseline(
    browser: Any,
    server: RedisServer,
    work: Path,
    base: Baseline,
    lines: list[str],
    agents: list[str],
    types: dict[str, str],
    plan: dict[str, Any],
) -> dict[str, Any]:
    """The graph-only load cell on the baseline's relay and page, for the fps beside; never fails the section."""
    if base.tree is None:
        return {"skipped": base.note}
    log(f"page at {base.label}: {plan['agents'] + 1} agents alive, {plan['rate']} events/s")
    try:
        with system("baseline", server, work, tree=base.tree) as old:
            context = browser.new_context(viewport={"width": 1280, "height": 720})
            try:
                page = context.new_page()
                _fill(page, old.bases[0], old.events_file, lines, plan)
                return {"rev": base.rev, **_load(page, old.events_file, agents, types, plan)}
            finally:
                context.close()
    except Exception as exc:  # the baseline's page is a comparison, not the figure under test
        return {"failed": f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"}


def _panels(
    browser: Any, base: str, path: Path, agents: list[str], types: dict[str, str], plan: dict[str, Any]
) -> dict[str, Any]:
    """The load cell again, on a fresh page with its panels open: the inspector, the feed, tool satellites."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    settings = json.dumps(PANEL_SETTINGS)
    context.add_init_script(f"for (const [k, v] of Object.entries({settings})) localStorage.setItem(k, v);")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/")
    page.wait_for_function(f"() => window.agentwatch?.stats.alive === {plan['agents'] + 1}", timeout=30_000)
    # Every agent uses every tool once: eight satellites each (the orchestrator wears its Agent calls).
    calls = [
        _line("PreToolUse", agent, types[agent], tool_name=tool, tool_use_id=f"toolu_{agent}_{tool}", tool_input={})
        for agent in agents
        for tool in PANEL_TOOLS
    ]
    _append(path, calls)
    satellites = len(agents) * len(PANEL_TOOLS)
    drawn_js = "() => +(document.getElementById('graph').dataset.satellites || 0)"  # SVG or, for a crowd, canvas
    page.wait_for_function(f"() => ({drawn_js})() >= {satellites}", timeout=60_000)
    # The inspector opens on a click on a node (inspector.js); the feed opened from its remembered state.
    # A page without them (an older web/) is measured with satellites only, and says so.
    inspector = page.locator("#inspector").count() > 0
    if inspector:
        page.locator(f'g.node[data-id="{SESSION}/{agents[0]}"] .body').click(force=True)
        page.wait_for_function("() => !document.getElementById('inspector').hidden")
    feed = page.evaluate("() => document.getElementById('feed')?.dataset.open === 'true'")
    page.wait_for_timeout(1000)
    load = _load(page, path, agents, types, plan, PANEL_TOOLS, tag="panels_")
    drawn = page.evaluate(drawn_js)
    context.close()
    return {
        **load,
        "satellites": drawn,
        "tools_per_agent": len(PANEL_TOOLS),
        "inspector_open": inspector,
        "feed_open": bool(feed),
        "page_errors": errors,
    }


def _load(
    page: Any,
    path: Path,
    agents: list[str],
    types: dict[str, str],
    plan: dict[str, Any],
    tools: list[str] = TOOLS,
    tag: str = "",
) -> dict[str, Any]:
    rng = random.Random(42)
    stop = threading.Event()
    written = [0]
    rate, seconds = plan["rate"], plan["seconds"]

    def write_load() -> None:
        started = time.monotonic()
        tick = 0
        while not stop.is_set():
            batch: list[str] = []
            for _ in range(max(1, rate // 20)):
                agent = rng.choice(agents)
                call = {"tool_name": rng.choice(tools), "tool_input": {}}
                tool_use_id = f"toolu_{tag}{written[0] + len(batch)}"
                batch.append(_line("PreToolUse", agent, types[agent], tool_use_id=tool_use_id, **call))
            _append(path, batch)
            written[0] += len(batch)
            tick += 1
            time.sleep(max(0.0, started + tick * 0.05 - time.monotonic()))

    writer = threading.Thread(target=write_load, daemon=True)
    writer.start()
    cdp = page.context.browser.new_browser_cdp_session()
    try:
        page.wait_for_timeout(500)
        js = "() => [window.agentwatch.stats.frames, performance.now(), window.agentwatch.stats.events]"
        start = page.evaluate(js)
        cpu_start = _cpu_seconds(cdp)
        per_second = []
        for _ in range(seconds):
            page.wait_for_timeout(1000)
            per_second.append(page.evaluate("() => window.agentwatch.stats.fps"))
        end = page.evaluate(js)
        cpu = _cpu_seconds(cdp) - cpu_start
    finally:
        stop.set()
        writer.join()
        cdp.detach()
    elapsed_ms = end[1] - start[1]
    frames = max(1, end[0] - start[0])
    return {
        # What a frame costs the browser (every Chromium process), which a busy machine inflates far less than
        # it cuts the frame rate: the figure to compare between cells and runs on a shared machine.
        "cpu_ms_per_frame": round(cpu * 1000 / frames, 2),
        "cpu_cores_busy": round(cpu * 1000 / elapsed_ms, 2),
        "fps_mean": round((end[0] - start[0]) * 1000 / elapsed_ms, 1),
        "fps_per_second": per_second,
        "events_per_s_applied": round((end[2] - start[2]) * 1000 / elapsed_ms, 1),
        "alive": page.evaluate("() => window.agentwatch.stats.alive"),
    }


def _cpu_seconds(cdp: Any) -> float:
    """CPU time used so far by the browser's processes (browser, renderers, GPU/compositor), in seconds."""
    return float(sum(p["cpuTime"] for p in cdp.send("SystemInfo.getProcessInfo")["processInfo"]))


def _probes(page: Any, path: Path, agent: str, agent_type: str, count: int) -> dict[str, Any]:
    latencies = []
    page.wait_for_timeout(1500)  # let the load's pulses play out
    for i in range(count):
        probe = f"Probe{i}"
        line = _line("PreToolUse", agent, agent_type, tool_name=probe, tool_use_id=f"toolu_probe_{i}", tool_input={})
        sent = time.time() * 1000
        _append(path, [line])
        page.wait_for_function("p => window.agentwatch.stats.lastPulse?.label === p", arg=probe, polling=5)
        pulse = page.evaluate("() => window.agentwatch.stats.lastPulse")
        latencies.append(pulse["at"] - sent)
        page.wait_for_timeout(150)
    return {
        "pulse_ms_median": round(median(latencies), 1),
        "pulse_ms_p90": round(percentile(latencies, 90), 1),
        "pulse_ms_max": round(max(latencies), 1),
        "probes": count,
    }
