"""The graph you can move, in a real Chromium against the real stack: zoom, pan, pins, fit, focus, the session
switcher, the keyboard, and the tool satellites."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.stack import RedisServer, Stack, fixture_payloads, run_hook
from tests.test_browser import (
    AFTER_PERMISSION,
    ARTIFACTS,
    EXPLORE,
    GENERAL,
    REVIEWER,
    SESSION,
    SUBAGENTS_BUSY,
    Scenario,
    Viewer,
    append_lines,
    wait_ingested,
)

pytestmark = pytest.mark.browser

OTHER = "0b5e9d3c-8a41-4f27-b6c2-9d1e7a3f5c80"  # the fixture's session replayed under another id
AGENTS = (EXPLORE, GENERAL, REVIEWER)

# The view transform d3.zoom holds for the svg: screen = k * layout + (x, y).
TRANSFORM_JS = "() => { const t = d3.zoomTransform(document.getElementById('graph')); return [t.k, t.x, t.y]; }"
# Every node's body, as a screen rectangle, and whether it lies inside the svg's rectangle.
INSIDE_JS = """sel => { const svg = document.getElementById('graph').getBoundingClientRect();
  const bodies = [...document.querySelectorAll(sel)];
  return bodies.length > 0 && bodies.every(b => { const r = b.getBoundingClientRect();
    return r.left >= svg.left && r.top >= svg.top && r.right <= svg.right && r.bottom <= svg.bottom; }); }"""
# The layout has come to rest: no node moved since the last poll (call with polling=250).
SETTLED_JS = """sel => { const now = JSON.stringify([...document.querySelectorAll(sel)].map(e => [e.__data__.x, e.__data__.y]));
  const still = window.__positions === now; window.__positions = now; return still; }"""
# A point of the window where the graph's background gets the pointer (not a node, not a panel).
BACKGROUND_JS = """() => { for (let y = 120; y < innerHeight - 120; y += 40) for (let x = 40; x < innerWidth - 40; x += 40) {
  const el = document.elementFromPoint(x, y);
  if (el && el.id === 'graph') return [x, y]; } return null; }"""
CENTRE_JS = """sel => { const r = document.querySelector(sel).getBoundingClientRect();
  return [r.x + r.width / 2, r.y + r.height / 2]; }"""


# ---- fixtures and helpers


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


def other_session(upto: int, start: int = 0) -> list[str]:
    """The fixture's payloads as another session of another project, with its own agent and call ids."""
    out = []
    for payload in fixture_payloads()[start:upto]:
        text = payload.replace(SESSION, OTHER).replace("acme-shop", "billing-api").replace('"toolu_', '"toolu_b')
        for agent in AGENTS:
            text = text.replace(agent, agent[::-1])
        out.append(text)
    return out


def tool_counts(payloads: list[str]) -> dict[str, Counter[str]]:
    """Calls by tool for each agent ("main" for the orchestrator), counted from the hook payloads."""
    counts: dict[str, Counter[str]] = {}
    for line in payloads:
        payload = json.loads(line)
        if payload["hook_event_name"] == "PreToolUse":
            counts.setdefault(payload.get("agent_id") or "main", Counter())[payload["tool_name"]] += 1
    return counts


def contains(text: str) -> re.Pattern[str]:
    """An attribute matcher for expect(): the value contains `text`."""
    return re.compile(re.escape(text))


def transform(page: Page) -> list[float]:
    return page.evaluate(TRANSFORM_JS)  # type: ignore[no-any-return]


def centre(page: Page, selector: str) -> list[float]:
    return page.evaluate(CENTRE_JS, selector)  # type: ignore[no-any-return]


def body(session: str, agent: str) -> str:
    return f'g.node[data-id="{session}/{agent}"] .body'


def all_inside(page: Page, selector: str = "g.node .body") -> bool:
    return page.evaluate(INSIDE_JS, selector)  # type: ignore[no-any-return]


def wait_inside(page: Page, selector: str = "g.node .body") -> None:
    page.wait_for_function(INSIDE_JS, arg=selector)


def layout_xy(page: Page, session: str, agent: str) -> list[float]:
    js = 'id => { const d = document.querySelector(`g.node[data-id="${id}"]`).__data__; return [d.x, d.y]; }'
    return page.evaluate(js, f"{session}/{agent}")  # type: ignore[no-any-return]


def two_sessions(stack: Stack, viewer: Viewer) -> Page:
    page = viewer.open()
    append_lines(stack.events_file, fixture_payloads()[:SUBAGENTS_BUSY] + other_session(SUBAGENTS_BUSY))
    expect(page.locator("g.node")).to_have_count(8)
    page.wait_for_function(SETTLED_JS, arg="g.node", polling=250)
    return page


def zoomed_in_far(page: Page) -> None:
    """Wheel in over the middle until some node leaves the window; each wheel event awaited, none left in flight."""
    page.mouse.move(640, 360)
    for _ in range(4):
        k = transform(page)[0]
        page.mouse.wheel(0, -400)
        page.wait_for_function(f"() => ({TRANSFORM_JS})()[0] > {k}")
        if not all_inside(page):
            return
    raise AssertionError("zoomed in four times and every node is still in view")


# ---- zoom and pan


def test_wheel_zooms_about_the_pointer_and_background_drag_pans(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    viewer = viewers(stack.base_url)
    page = viewer.open()
    append_lines(stack.events_file, fixture_payloads()[:SUBAGENTS_BUSY])
    expect(page.locator("g.node")).to_have_count(4)
    expect(page.locator("#graph")).to_have_attribute("data-follow", "true")
    k0, x0, y0 = transform(page)
    point = page.evaluate(BACKGROUND_JS)
    assert point is not None
    under = ((point[0] - x0) / k0, (point[1] - y0) / k0)

    page.mouse.move(*point)
    page.mouse.wheel(0, -300)
    page.wait_for_function(f"() => ({TRANSFORM_JS})()[0] > {k0 * 1.2}")
    expect(page.locator("#graph")).to_have_attribute("data-follow", "false")  # the person took the view
    k1, x1, y1 = transform(page)
    # The layout point under the pointer stays under it.
    assert abs(under[0] * k1 + x1 - point[0]) < 1 and abs(under[1] * k1 + y1 - point[1]) < 1
    assert page.locator("#viewport").get_attribute("transform") == f"translate({x1},{y1}) scale({k1})"

    page.mouse.down()
    page.mouse.move(point[0] + 150, point[1] + 60, steps=8)
    page.mouse.up()
    k2, x2, y2 = transform(page)
    assert k2 == k1
    assert abs(x2 - x1 - 150) < 1 and abs(y2 - y1 - 60) < 1
    viewer.assert_clean()


# ---- pins


def test_a_dragged_node_stays_where_dropped_until_double_clicked(
    stack: Stack, viewers: Callable[..., Viewer], redis_server: RedisServer
) -> None:
    viewer = viewers(stack.base_url)
    page = viewer.open()
    append_lines(stack.events_file, fixture_payloads()[:SUBAGENTS_BUSY])
    expect(page.locator("g.node")).to_have_count(4)
    node = viewer.node(REVIEWER)
    expect(node).to_have_attribute("data-pinned", "false")
    expect(node.locator(".pin")).to_be_hidden()

    # Pressed at its centre once it has settled, the node's centre ends under the drop point.
    page.wait_for_function(SETTLED_JS, arg=body(SESSION, REVIEWER), polling=250)
    start = centre(page, body(SESSION, REVIEWER))
    drop = (880.0, 200.0)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*drop, steps=12)
    page.mouse.up()
    expect(node).to_have_attribute("data-pinned", "true")
    expect(node.locator(".pin")).to_be_visible()
    expect(node).to_have_attribute("aria-label", contains("pinned"))
    k, x, y = transform(page)
    dropped = layout_xy(page, SESSION, REVIEWER)
    assert dropped == pytest.approx([(drop[0] - x) / k, (drop[1] - y) / k], abs=1.5)
    assert centre(page, body(SESSION, REVIEWER)) == pytest.approx(list(drop), abs=1.5)

    # More events reheat the layout (Explore leaves, a call fails): the pinned node does not move.
    append_lines(stack.events_file, fixture_payloads()[SUBAGENTS_BUSY:AFTER_PERMISSION])
    expect(viewer.node(EXPLORE)).to_have_count(0)
    expect(viewer.node(GENERAL)).to_have_attribute("data-fails", "1")
    assert layout_xy(page, SESSION, REVIEWER) == dropped

    node.locator(".body").dblclick()
    expect(node).to_have_attribute("data-pinned", "false")
    expect(node.locator(".pin")).to_be_hidden()
    assert page.evaluate(f"() => document.querySelector('{body(SESSION, REVIEWER)}').__data__.fx") is None
    # Freed, it goes back to the layout: the links pull it away from the drop point.
    page.wait_for_function(
        """([sel, x, y]) => { const d = document.querySelector(sel).__data__;
           return Math.hypot(d.x - x, d.y - y) > 20; }""",
        arg=[body(SESSION, REVIEWER), *dropped],
    )
    viewer.assert_clean()


# ---- fit, follow, focus


def test_fit_shows_every_node_and_a_moved_view_is_not_yanked(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    viewer = viewers(stack.base_url)
    page = viewer.open()
    append_lines(stack.events_file, fixture_payloads()[:SUBAGENTS_BUSY])
    expect(page.locator("g.node")).to_have_count(4)
    wait_inside(page)
    zoomed_in_far(page)
    moved = transform(page)

    # A new session while the person looks closely: the view stays where they put it.
    append_lines(stack.events_file, other_session(SUBAGENTS_BUSY))
    expect(page.locator("g.node")).to_have_count(8)
    page.wait_for_timeout(1000)  # the absence of a move cannot be awaited: give following the time it would take
    assert transform(page) == moved
    assert not all_inside(page)

    page.get_by_role("button", name="fit", exact=True).click()
    expect(page.locator("#graph")).to_have_attribute("data-follow", "true")
    expect(page.locator("#view-fit")).to_have_attribute("data-following", "true")
    wait_inside(page)
    # Following again: a third session comes into view by itself.
    third = Scenario("third-session", "docs-site")
    append_lines(stack.events_file, third.start() + third.spawn("t-1", "Plan", "opus", "plan the docs"))
    expect(page.locator("g.node")).to_have_count(10)
    wait_inside(page)
    viewer.assert_clean()


def test_focus_session_fits_that_session_only(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    viewer = viewers(stack.base_url)
    page = two_sessions(stack, viewer)
    wait_inside(page)
    k_all = transform(page)[0]
    viewer.node(GENERAL[::-1], OTHER).focus()  # the session of the node last focused is the one focused
    focus = page.get_by_role("button", name="focus session", exact=True)
    expect(focus).to_have_attribute("title", contains("billing-api · 0b5e9d3c"))
    focus.click()
    expect(page.locator("#graph")).to_have_attribute("data-follow", "false")
    page.wait_for_function(f"() => ({TRANSFORM_JS})()[0] > {k_all * 1.2}")
    expect(page.locator("#graph")).to_have_attribute("data-fitting", "false")
    wait_inside(page, f'g.node[data-id^="{OTHER}/"] .body')
    # The other session is off to the side, out of the window.
    x, y = centre(page, body(SESSION, "main"))
    assert not (0 <= x <= 1280 and 0 <= y <= 720), (x, y)
    # And the focused one is centred.
    xs = [centre(page, body(OTHER, a))[0] for a in ("main", *(a[::-1] for a in AGENTS))]
    assert abs((min(xs) + max(xs)) / 2 - 640) < 60, xs
    viewer.assert_clean()


# ---- the session switcher


def test_the_session_switcher_shows_one_session(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    viewer = viewers(stack.base_url)
    page = two_sessions(stack, viewer)
    select = page.get_by_role("combobox", name="Sessions shown")
    expect(select.locator("option")).to_have_text(["all sessions", "acme-shop · 7f3c2a91", "billing-api · 0b5e9d3c"])

    select.select_option(OTHER)
    expect(page.locator(f'g.node[data-id^="{SESSION}/"]')).to_have_count(0)
    expect(page.locator(f'g.node[data-id^="{OTHER}/"]')).to_have_count(4)
    expect(page.locator(f'line.link[data-child^="{SESSION}/"]')).to_have_count(0)
    # The hidden session is not simulated: its agents keep their place while its graph changes under them.
    model_xy = """ids => ids.map(id => { const d = window.agentwatch.model.nodes.get(id); return [d.x, d.y]; })"""
    hidden = [f"{SESSION}/{GENERAL}", f"{SESSION}/{REVIEWER}"]
    before = page.evaluate(model_xy, hidden)
    append_lines(stack.events_file, fixture_payloads()[SUBAGENTS_BUSY:AFTER_PERMISSION])
    page.wait_for_function(f"() => !window.agentwatch.model.nodes.has('{SESSION}/{EXPLORE}')")
    assert page.evaluate(model_xy, hidden) == before
    # Shown alone, the session sits in the middle, all of it in view.
    assert centre(page, body(OTHER, "main")) == pytest.approx([640, 360], abs=2)
    wait_inside(page)

    select.select_option("")
    expect(page.locator("g.node")).to_have_count(7)
    wait_inside(page)
    viewer.assert_clean()


# ---- the keyboard


def test_keyboard_focuses_nodes_zooms_pans_and_fits(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    viewer = viewers(stack.base_url)
    page = viewer.open()
    append_lines(stack.events_file, fixture_payloads()[:SUBAGENTS_BUSY])
    expect(page.locator("g.node")).to_have_count(4)
    wait_inside(page)

    page.keyboard.press("Tab")
    focused = page.locator("g.node:focus")
    expect(focused).to_have_count(1)
    expect(focused).to_have_attribute("role", "button")
    expect(page.locator("#tooltip")).to_be_visible()  # what the node is, said where it is
    labels = page.evaluate("() => [...document.querySelectorAll('g.node')].map(g => g.getAttribute('aria-label'))")
    assert any(label.startswith("orchestrator claude-opus-4-5, project acme-shop") for label in labels)
    explore = viewer.node(EXPLORE).get_attribute("aria-label") or ""
    assert explore.startswith("Explore ") and "haiku" in explore and "Map checkout module" in explore, explore

    k0, x0, y0 = transform(page)
    page.keyboard.press("+")
    page.wait_for_function(f"() => Math.abs(({TRANSFORM_JS})()[0] - {k0 * 1.25}) < 1e-6")
    expect(page.locator("#graph")).to_have_attribute("data-follow", "false")
    page.keyboard.press("-")
    page.keyboard.press("-")
    page.wait_for_function(f"() => Math.abs(({TRANSFORM_JS})()[0] - {k0 / 1.25}) < 1e-6")
    k1, x1, y1 = transform(page)
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"() => ({TRANSFORM_JS})()[1] > {x1 + 100}")  # the content moves right
    page.keyboard.press("ArrowUp")
    page.wait_for_function(f"() => ({TRANSFORM_JS})()[2] > {y1 + 50}")
    zoomed_in_far(page)
    page.keyboard.press("0")
    expect(page.locator("#graph")).to_have_attribute("data-follow", "true")
    wait_inside(page)
    # Four nodes fit unzoomed: the fit animates back to the first view.
    page.wait_for_function(
        f"([k, x, y]) => {{ const t = ({TRANSFORM_JS})(); return Math.hypot(t[0] - k, t[1] - x, t[2] - y) < 0.5; }}",
        arg=[k0, x0, y0],
    )

    # The toolbar is real buttons, reachable and pressed from the keyboard.
    zoomed_in_far(page)
    fit = page.get_by_role("button", name="fit", exact=True)
    fit.focus()
    page.keyboard.press("Enter")
    wait_inside(page)
    page.get_by_role("button", name="zoom in", exact=True).click()
    page.wait_for_function(f"() => ({TRANSFORM_JS})()[0] > {k0 * 1.2}")
    viewer.assert_clean()


# ---- readable from 720p to 4K


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (3840, 2160)])
def test_layout_is_readable_720p_to_4k(stack: Stack, viewers: Callable[..., Viewer], width: int, height: int) -> None:
    long_type = "a-very-long-custom-agent-type-name-that-goes-on-and-on"
    s = Scenario("readable", "a-project-folder-with-a-really-long-name-indeed")
    payloads = s.start()
    for i in range(12):
        payloads += s.spawn(f"r{i}", long_type if i == 0 else f"worker-{i}", "sonnet", f"task {i}")
        payloads += s.tool(f"r{i}", "Read", "done")
    viewer = viewers(stack.base_url, width, height)
    page = viewer.open()
    append_lines(stack.events_file, payloads)
    expect(page.locator("g.node")).to_have_count(13)
    long_node = viewer.node("r0", "readable")
    label = long_node.locator(".label")
    expect(label).to_have_text(long_type[:27] + "…")
    expect(long_node).to_have_attribute("aria-label", contains(long_type))
    # Bodies settle apart (collision), all in view; texts stay readable at this size.
    page.wait_for_function(
        """() => { const r = [...document.querySelectorAll('g.node .body')].map(b => b.getBoundingClientRect());
          return r.every((a, i) => r.slice(i + 1).every(b =>
            Math.hypot(a.x + a.width / 2 - b.x - b.width / 2, a.y + a.height / 2 - b.y - b.height / 2)
              >= (a.width + b.width) / 2)); }"""
    )
    wait_inside(page)
    box = label.bounding_box()
    assert box is not None and box["height"] >= (10 if width < 2000 else 20), box
    bar = page.locator("#toolbar").bounding_box()
    assert bar is not None and bar["x"] >= 0 and bar["y"] >= 0
    assert bar["x"] + bar["width"] <= width and bar["y"] + bar["height"] <= height
    for other in ("#counters", "#status", "#legend"):
        o = page.locator(other).bounding_box()
        assert o is not None
        assert (
            bar["x"] + bar["width"] <= o["x"]
            or o["x"] + o["width"] <= bar["x"]
            or bar["y"] + bar["height"] <= o["y"]
            or o["y"] + o["height"] <= bar["y"]
        ), (other, o, bar)
    smallest = page.evaluate("""() => Math.min(...[...document.querySelectorAll('#toolbar button, #toolbar select')]
      .map(e => parseFloat(getComputedStyle(e).fontSize)))""")
    assert smallest >= 12
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"graph-readable-{width}x{height}.png")
    viewer.assert_clean()


# ---- tool satellites


def satellites(page: Page, session: str, agent: str) -> dict[str, str]:
    js = """id => Object.fromEntries([...document.querySelectorAll(`g.node[data-id="${id}"] g.sat`)]
      .map(s => [s.dataset.tool, s.querySelector('.sat-label').textContent]))"""
    return page.evaluate(js, f"{session}/{agent}")  # type: ignore[no-any-return]


def expected_labels(counts: Counter[str]) -> dict[str, str]:
    return {tool: f"{tool} ×{n}" for tool, n in counts.items()}


def test_tool_satellites_count_each_agents_calls(
    stack: Stack, viewers: Callable[..., Viewer], redis_server: RedisServer
) -> None:
    viewer = viewers(stack.base_url)
    page = viewer.open()
    toggle = page.get_by_role("button", name="tools", exact=True)
    expect(toggle).to_have_attribute("aria-pressed", "false")  # off by default
    payloads = fixture_payloads()[:SUBAGENTS_BUSY]
    append_lines(stack.events_file, payloads)
    expect(page.locator("g.node")).to_have_count(4)
    expect(page.locator("g.sat")).to_have_count(0)

    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    counts = tool_counts(payloads)
    assert counts["main"]["Agent"] == 3 and sum(counts[EXPLORE].values()) == 3  # the fixture is what we think
    expect(page.locator("g.sat")).to_have_count(sum(len(c) for c in counts.values()))
    for agent, calls in counts.items():
        assert satellites(page, SESSION, agent) == expected_labels(calls), agent
    # Sized by calls: Explore's two Reads outweigh its one Grep.
    sizes = page.evaluate(f"""() => Object.fromEntries([...document.querySelectorAll(
      'g.node[data-id="{SESSION}/{EXPLORE}"] g.sat')].map(s => [s.dataset.tool, +s.querySelector('circle').getAttribute('r')]))""")
    assert sizes["Read"] > sizes["Grep"]

    # A new call lands on the right agent's right satellite, and pulses it.
    grep = satellites(page, SESSION, REVIEWER)["Grep"]
    base = json.loads(payloads[22])  # the reviewer's PreToolUse Grep
    assert base["agent_id"] == REVIEWER and base["tool_name"] == "Grep"
    assert run_hook(json.dumps({**base, "tool_use_id": "toolu_again"}), stack.events_file).returncode == 0
    reviewer = viewer.node(REVIEWER)
    expect(reviewer.locator('g.sat[data-tool="Grep"] .sat-label')).to_have_text(f"Grep ×{counts[REVIEWER]['Grep'] + 1}")
    expect(reviewer.locator('g.sat[data-tool="Grep"]')).to_have_attribute("data-pulses", "1")
    assert grep == f"Grep ×{counts[REVIEWER]['Grep']}"
    counts[REVIEWER]["Grep"] += 1
    for agent, calls in counts.items():
        assert satellites(page, SESSION, agent) == expected_labels(calls), agent
    expect(page.locator('g.sat[data-pulses="1"]')).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "tool-satellites.png")

    # Remembered: a page opened now starts with them on, and draws the same counts from the snapshot.
    wait_ingested(redis_server, stack, SUBAGENTS_BUSY + 1)
    late = viewer.context.new_page()  # the same browser profile, so the same localStorage
    errors: list[str] = []
    late.on("pageerror", lambda exc: errors.append(str(exc)))
    late.goto(stack.base_url + "/")
    expect(late.locator("#status")).to_have_attribute("data-status", "connected")
    expect(late.get_by_role("button", name="tools", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(late.locator("g.sat")).to_have_count(sum(len(c) for c in counts.values()))
    for agent, calls in counts.items():
        assert satellites(late, SESSION, agent) == expected_labels(calls), agent
    assert errors == []

    toggle.click()
    expect(page.locator("g.sat")).to_have_count(0)
    assert page.evaluate("() => localStorage.getItem('agentwatch.tools')") == "off"
    viewer.assert_clean()


def test_a_crowds_satellites_are_painted_on_a_canvas(stack: Stack, viewers: Callable[..., Viewer]) -> None:
    """Past 60 agents the satellites leave the SVG for one canvas; the counts drawn still follow the calls."""
    crowd = Scenario("crowd", "big-refactor")
    agents = [f"c{i:02d}" for i in range(70)]
    payloads = crowd.start()
    for agent in agents:
        payloads += crowd.spawn(agent, "worker", "haiku", "shard")
        payloads += crowd.tool(agent, "Read") + crowd.tool(agent, "Grep")
    viewer = viewers(stack.base_url)
    page = viewer.open()
    page.get_by_role("button", name="tools", exact=True).click()
    append_lines(stack.events_file, payloads)
    expect(page.locator("g.node")).to_have_count(71)
    expect(page.locator("#graph")).to_have_class(contains("crowded"))
    # Two per agent, and the orchestrator's Agent calls.
    expect(page.locator("#graph")).to_have_attribute("data-satellites", str(2 * len(agents) + 1))
    expect(page.locator("g.sat")).to_have_count(0)
    expect(page.locator("canvas#satellites")).to_be_visible()
    append_lines(stack.events_file, crowd.tool(agents[0], "Bash"))
    expect(page.locator("#graph")).to_have_attribute("data-satellites", str(2 * len(agents) + 2))
    painted = page.evaluate("""() => { const c = document.getElementById('satellites');
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i]) n++; return n; }""")
    assert painted > 2 * len(agents) * 4, painted  # a few pixels per satellite at least
    page.get_by_role("button", name="tools", exact=True).click()
    expect(page.locator("canvas#satellites")).to_be_hidden()
    viewer.assert_clean()
