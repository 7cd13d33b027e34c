"""Replay in the page, in a real Chromium against the real stack: the timeline under the graph, a replay that
shows at every seq what a live page showed there, seeking by dragging the playhead and by markers, pause and
step, back to live without a stray node, and a refused replay that says why and does not loop."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from contract import Keys
from tests.stack import RedisServer, Stack, play_fixture, running_stack
from tests.test_browser import Viewer, wait_ingested

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parent.parent / "docs"
KEYFRAMES = ("--keyframe-every", "7")  # several keyframes in the fixture's 48 events, as tests/test_replay.py
FIXTURE_LINES = 44
FIXTURE_EVENTS = 48
CHUNK = 4  # fixture lines played between two looks at the live page

# Installed before the page's scripts: after every frame the model takes, what it holds, by seq. The page's
# app.js imports the same module instance, so this sees exactly what the page applies (nothing is changed).
RECORDER_JS = """
window.__pictures = [];
import('/static/model.js').then(({ GraphModel }) => {
  const receive = GraphModel.prototype.receive;
  GraphModel.prototype.receive = function (msg, now) {
    const result = receive.call(this, msg, now);
    if (!result.resync && !result.ignored && (msg.type === 'snapshot' || msg.type === 'event')) {
      const nodes = [...this.nodes.values()].filter((n) => n.state !== 'done');
      window.__pictures.push([this.seq, nodes.map((n) => [n.id, n.family, n.state, n.waiting ?? ''])]);
    }
    return result;
  };
  window.__recording = true;
});
"""
# What a reader sees of the nodes that are not leaving: id, colour, state, waiting mark.
DRAWN_JS = """() => [...document.querySelectorAll('g.node:not([data-state="done"])')]
  .map((g) => [g.dataset.id, g.dataset.modelFamily, g.dataset.state, g.dataset.waiting || ''])"""
# Every node drawn, leaving or not (after a return to live, nothing may linger).
ALL_JS = """() => [...document.querySelectorAll('g.node')].map((g) => [g.dataset.id, g.dataset.modelFamily,
  g.dataset.state])"""
CLOCK_JS = "ts => new Date(ts).toTimeString().slice(0, 8)"

Picture = list[tuple[str, ...]]

expect.set_options(timeout=15_000)


def picture(rows: list[list[str]]) -> Picture:
    return sorted(tuple(row) for row in rows)


@pytest.fixture
def stack(redis_server: RedisServer, events_file: Path, prefix: str) -> Iterator[Stack]:
    events_file.parent.mkdir(parents=True, exist_ok=True)
    events_file.touch()
    with running_stack(redis_server.url, events_file, prefix, ingest_args=KEYFRAMES) as s:
        yield s


@pytest.fixture
def viewers(browser: Browser) -> Iterator[Callable[..., Viewer]]:
    opened: list[Viewer] = []

    def make(base_url: str, width: int = 1280, height: int = 720, record: bool = True) -> Viewer:
        viewer = Viewer(browser, base_url, width, height)
        if record:
            viewer.page.add_init_script(RECORDER_JS)
        opened.append(viewer)
        return viewer

    try:
        yield make
    finally:
        for viewer in opened:
            viewer.close()


def meta_seq(redis_server: RedisServer, stack: Stack) -> int:
    return int(redis_server.cli("HGET", Keys(stack.prefix).meta, "seq").strip() or 0)


def window_of(page: Page) -> dict[str, Any]:
    return page.evaluate("async () => (await fetch('/replay/window')).json()")  # type: ignore[no-any-return]


def recorded(page: Page) -> list[tuple[int, Picture]]:
    return [(seq, picture(rows)) for seq, rows in page.evaluate("() => window.__pictures")]


def page_seq(page: Page) -> int | None:
    return page.evaluate("() => window.agentwatch.stats.lastSeq")  # type: ignore[no-any-return]


def drawn_equals(page: Page, expected: Picture) -> None:
    """Wait until the drawing shows `expected` (the graph draws on the next frame after the model changed)."""
    rows = [list(row) for row in expected]
    page.wait_for_function(
        f"expected => JSON.stringify(({DRAWN_JS})().sort()) === JSON.stringify(expected)",
        arg=sorted(rows),
    )


def play_live(stack: Stack, redis_server: RedisServer, live: Viewer) -> dict[int, Picture]:
    """The fixture played to a live page a few lines at a time; what its model held after each seq. At the
    end of each chunk the drawing is checked against the model, so the model's picture is the page's."""
    page = live.open()
    page.wait_for_function("() => window.__recording === true")
    for start in range(0, FIXTURE_LINES, CHUNK):
        play_fixture(stack.events_file, min(start + CHUNK, FIXTURE_LINES), start)
        wait_ingested(redis_server, stack, min(start + CHUNK, FIXTURE_LINES))
        seq = meta_seq(redis_server, stack)
        page.wait_for_function("s => window.agentwatch.stats.lastSeq === s", arg=seq)
        states = dict(recorded(page))
        drawn_equals(page, states[seq])
    states = dict(recorded(page))
    assert sorted(states) == list(range(0, FIXTURE_EVENTS + 1)), sorted(states)
    return states


def strip_point(page: Page, fraction: float) -> tuple[float, float]:
    box = page.locator("#tl-strip").bounding_box()
    assert box is not None
    return box["x"] + box["width"] * fraction, box["y"] + box["height"] * 0.75


def settle(page: Page) -> int:
    """Wait until a paused replay has landed; its seq."""
    timeline = page.locator("#timeline")
    expect(timeline).to_have_attribute("data-playing", "false")
    expect(page.locator("#tl-state")).to_have_text(re.compile(r"^seq \d+ · paused$"))
    seq = int(timeline.get_attribute("data-seq") or -1)
    page.wait_for_function("s => window.agentwatch.stats.lastSeq === s", arg=seq)
    return seq


def replay_sockets(page: Page) -> list[str]:
    opened: list[str] = []
    page.on("websocket", lambda ws: opened.append(ws.url))
    return opened


# ---- the tests


def test_replay_shows_what_the_live_page_showed_and_returns_to_live(
    stack: Stack, redis_server: RedisServer, viewers: Callable[..., Viewer]
) -> None:
    live = viewers(stack.base_url)
    states = play_live(stack, redis_server, live)
    expect(live.page.locator('g.node[data-state="done"]')).to_have_count(0)  # the leave animations are over
    live_final = picture(live.page.evaluate(ALL_JS))
    window = window_of(live.page)
    assert window["first_seq"] == 0 and window["last_seq"] == FIXTURE_EVENTS

    # From seq 0 at 10x: every seq the page applied shows what the live page held at that seq.
    viewer = viewers(stack.base_url)
    page = viewer.page
    sockets = replay_sockets(page)
    page.goto(f"{stack.base_url}/?replay=0&speed=10")
    expect(page.locator("#status")).to_have_attribute("data-status", "replay")
    expect(page.locator("#status")).to_have_text("◉ replay")
    banner = page.locator("#replay-banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_text(re.compile(r"^Replay — \d\d:\d\d:\d\d — 10x$"))
    expect(page.locator("#timeline")).to_have_attribute("data-ended", "true")
    assert page_seq(page) == FIXTURE_EVENTS
    replayed = recorded(page)
    assert [seq for seq, _ in replayed] == list(range(0, FIXTURE_EVENTS + 1))
    for seq, seen in replayed:
        assert seen == states[seq], f"replay at seq {seq}"
    drawn_equals(page, states[FIXTURE_EVENTS])
    last_ts = window["last_ts"]
    expect(banner).to_have_text(f"Replay — {page.evaluate(CLOCK_JS, last_ts)} — 10x")
    assert [u for u in sockets if "replay=" in u] == [f"{stack.ws_url}?replay=0&speed=10"]
    assert not [u for u in sockets if "replay=" not in u]  # the live stream stays closed while replaying
    assert viewer.stats()["pulses"] > 0  # played, not jumped: the calls pulsed

    # Pause, then drag the playhead back and forth: each seek opens once, lands on a seq and stays there.
    page.locator("#tl-play").click()
    expect(page.locator("#tl-play")).to_have_attribute("aria-label", "play")
    for there, back in ((0.7, 0.25), (0.2, 0.55), (0.9, 0.4)):
        before = len(sockets)
        pulses = viewer.stats()["pulses"]
        page.mouse.move(*strip_point(page, there))
        page.mouse.down()
        page.mouse.move(*strip_point(page, back), steps=12)
        page.mouse.up()
        expect(page.locator("#tl-state")).to_have_text(re.compile(r"^seq \d+ · paused$"))
        seq = settle(page)
        assert 0 <= seq <= FIXTURE_EVENTS
        drawn_equals(page, states[seq])
        # Debounced: a socket only where the pointer rested, not one per pointer event (13 here).
        assert 1 <= len(sockets) - before <= 5, sockets[before:]
        assert sockets[-1].startswith(f"{stack.ws_url}?replay=")
        assert viewer.stats()["pulses"] == pulses  # the seek replaced the model: no effects storm
        assert "replay=" in page.url

    # Step: one event at a time, each as the live page had it.
    seq = settle(page)
    for _ in range(3):
        if seq == FIXTURE_EVENTS:
            break
        page.locator("#tl-step").click()
        page.wait_for_function("s => window.agentwatch.stats.lastSeq === s", arg=seq + 1)
        seq += 1
        drawn_equals(page, states[seq])
        expect(page.locator("#tl-state")).to_have_text(f"seq {seq} · paused")

    # A marker: the tool failure, pressed, shows the state right after it.
    fail = page.locator('#tl-strip g.tl-mark[data-kind="fail"]').first
    fail_seq = int(fail.get_attribute("data-seq") or -1)
    fail.locator("path").click()
    page.wait_for_function("s => window.agentwatch.stats.lastSeq === s", arg=fail_seq)
    expect(page.locator("#tl-state")).to_have_text(f"seq {fail_seq} · paused")
    drawn_equals(page, states[fail_seq])

    # Live: the replay socket closes, the live stream starts from a fresh snapshot; nothing stray is left.
    page.locator("#tl-live").click()
    expect(page.locator("#status")).to_have_attribute("data-status", "connected")
    expect(banner).to_be_hidden()
    expect(page.locator("#timeline")).to_have_attribute("data-mode", "live")
    page.wait_for_function("s => window.agentwatch.stats.lastSeq === s", arg=FIXTURE_EVENTS)
    page.wait_for_function(
        f"expected => JSON.stringify(({ALL_JS})().sort()) === JSON.stringify(expected)",
        arg=[list(row) for row in live_final],
    )
    assert "replay=" not in page.url
    live_sockets = [u for u in sockets if "replay=" not in u]
    assert live_sockets == [stack.ws_url], live_sockets  # a fresh snapshot, not a resume
    viewer.assert_clean()
    live.assert_clean()


def test_the_timeline_shows_the_window_its_minutes_and_its_markers(
    stack: Stack, redis_server: RedisServer, viewers: Callable[..., Viewer]
) -> None:
    play_fixture(stack.events_file)
    wait_ingested(redis_server, stack, FIXTURE_LINES)
    viewer = viewers(stack.base_url, record=False)
    page = viewer.open()
    window = window_of(page)
    assert window["last_seq"] == FIXTURE_EVENTS
    timeline = page.locator("#timeline")
    expect(timeline).to_have_attribute("data-mode", "live")
    expect(page.locator("#replay-banner")).to_be_hidden()
    expect(page.locator("#tl-live")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#tl-first")).to_have_text(f"{page.evaluate(CLOCK_JS, window['first_ts'])}\nseq 0")
    expect(page.locator("#tl-last")).to_have_text(f"{page.evaluate(CLOCK_JS, window['last_ts'])}\nseq {FIXTURE_EVENTS}")
    # Events per minute: the bars add up to the window's events, failures counted apart and drawn red.
    bins = page.locator("#tl-strip g.tl-bin")
    expect(bins.first).to_be_attached()
    counts = bins.evaluate_all("gs => gs.map(g => [+g.dataset.events, +g.dataset.failures])")
    assert sum(e for e, _ in counts) == FIXTURE_EVENTS == sum(e for _, e, _ in window["minutes"])
    assert sum(f for _, f in counts) == sum(f for _, _, f in window["minutes"]) >= 1
    red = page.locator("#tl-strip g.tl-bin .tl-fails").evaluate_all(
        "rs => rs.filter(r => +r.getAttribute('height') > 0).map(r => getComputedStyle(r).fill)"
    )
    assert red and set(red) == {"rgb(239, 68, 68)"}
    # Markers: a session start, its end, and the failed tool call, each where its event is.
    marks = page.locator("#tl-strip g.tl-mark")
    kinds = marks.evaluate_all("gs => gs.map(g => [g.dataset.kind, g.dataset.types, +g.dataset.seq])")
    by_kind = {kind: (types, seq) for kind, types, seq in kinds}
    assert set(by_kind) == {"start", "end", "fail"}, kinds
    assert "session_start" in by_kind["start"][0] and "session_end" in by_kind["end"][0]
    assert "tool_fail" in by_kind["fail"][0]
    fail_mark = next(m for m in window["marks"] if m["type"] == "tool_fail")
    assert by_kind["fail"][1] == fail_mark["seq"]
    xs = marks.evaluate_all("gs => gs.map(g => g.getBoundingClientRect().x)")
    assert xs == sorted(xs)
    # Hover says what and when.
    page.locator('#tl-strip g.tl-mark[data-kind="fail"] path').hover()
    tip = page.locator("#tl-tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text(f"{page.evaluate(CLOCK_JS, fail_mark['ts'])} · {fail_mark['tool']} failed in ")
    expect(tip).to_contain_text(f"seq {fail_mark['seq']}")
    page.locator('#tl-strip g.tl-mark[data-kind="start"] path').hover()
    expect(tip).to_contain_text("session 7f3c2a91 started")
    page.mouse.move(5, 5)
    expect(tip).to_be_hidden()
    # Live: the strip grows with the window (fetched again every 10 s).
    play_fixture(stack.events_file, 4)  # the fixture again: its session starts over
    wait_ingested(redis_server, stack, FIXTURE_LINES + 4)
    grown = meta_seq(redis_server, stack)
    assert grown > FIXTURE_EVENTS
    expect(page.locator("#tl-last")).to_contain_text(f"seq {grown}", timeout=15_000)
    viewer.assert_clean()


def test_a_replay_outside_the_window_says_so_and_does_not_loop(
    stack: Stack, redis_server: RedisServer, viewers: Callable[..., Viewer]
) -> None:
    play_fixture(stack.events_file, 10)
    wait_ingested(redis_server, stack, 10)
    last = meta_seq(redis_server, stack)
    viewer = viewers(stack.base_url, 800, 600, record=False)
    page = viewer.page
    sockets = replay_sockets(page)
    page.goto(f"{stack.base_url}/?replay=99999")
    refusal = page.locator("#tl-error")
    expect(refusal).to_contain_text(f"seq 99999 is outside the replay window: seqs 0 to {last}")
    expect(refusal).to_be_visible()
    box = refusal.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 800  # the whole message, readable
    expect(page.locator("#status")).to_have_attribute("data-status", "refused")
    expect(page.locator("#timeline")).to_have_attribute("data-mode", "refused")
    expect(page.locator("#tl-first")).to_contain_text("seq 0")
    expect(page.locator("#tl-last")).to_contain_text(f"seq {last}")
    expect(page.locator("#replay-banner")).to_be_visible()
    # Nothing to await: no retry may come. Backoff would retry within 1.5 s; give it twice that.
    page.wait_for_timeout(3000)
    assert sockets == [f"{stack.ws_url}?replay=99999&speed=1"], sockets
    expect(page.locator("#status")).to_have_attribute("data-status", "refused")
    # From there, live works.
    page.locator("#tl-live").click()
    expect(page.locator("#status")).to_have_attribute("data-status", "connected")
    expect(refusal).to_be_hidden()
    page.wait_for_function("s => window.agentwatch.stats.lastSeq === s", arg=last)
    viewer.assert_clean()


def test_pause_freezes_the_live_view_and_speed_reaches_the_relay(
    stack: Stack, redis_server: RedisServer, viewers: Callable[..., Viewer]
) -> None:
    viewer = viewers(stack.base_url)
    page = viewer.open()
    play_fixture(stack.events_file, 20)
    wait_ingested(redis_server, stack, 20)
    held = meta_seq(redis_server, stack)
    page.wait_for_function("s => window.agentwatch.stats.lastSeq === s", arg=held)
    before = picture(page.evaluate(DRAWN_JS))
    sockets = replay_sockets(page)
    page.locator("#tl-play").click()  # pause while live: a replay at the seq the page holds, paused
    expect(page.locator("#status")).to_have_attribute("data-status", "replay")
    expect(page.locator("#tl-state")).to_have_text(f"seq {held} · paused")
    assert sockets == [f"{stack.ws_url}?replay={held}&speed=1"]
    play_fixture(stack.events_file, None, 20)  # the live session goes on; the paused page does not
    wait_ingested(redis_server, stack, FIXTURE_LINES)
    page.wait_for_timeout(500)
    assert page_seq(page) == held
    assert picture(page.evaluate(DRAWN_JS)) == before
    # Faster, then play: the page catches up with the window's end and keeps following.
    page.locator("#tl-speed").select_option("max")
    expect(page.locator("#replay-banner")).to_have_text(re.compile(r"— max$"))
    assert "speed=max" in page.url
    page.locator("#tl-play").click()
    page.wait_for_function("s => window.agentwatch.stats.lastSeq === s", arg=meta_seq(redis_server, stack))
    expect(page.locator("#timeline")).to_have_attribute("data-ended", "true")
    expect(page.locator("#tl-state")).to_have_text(re.compile(r"^end of the window at seq \d+"))
    viewer.assert_clean()


def test_timeline_screenshot(stack: Stack, redis_server: RedisServer, viewers: Callable[..., Viewer]) -> None:
    """docs/timeline.png: the page in replay, paused at the failed tool call, its marker's tooltip shown."""
    play_fixture(stack.events_file)
    wait_ingested(redis_server, stack, FIXTURE_LINES)
    viewer = viewers(stack.base_url, 1400, 900, record=False)
    page = viewer.page
    page.goto(f"{stack.base_url}/?replay=0&speed=10")
    expect(page.locator("#timeline")).to_have_attribute("data-ended", "true")
    page.locator("#tl-play").click()
    fail = page.locator('#tl-strip g.tl-mark[data-kind="fail"] path').first
    fail.click()
    settle(page)
    expect(page.locator("g.node").first).to_be_attached()
    page.wait_for_function(
        """() => [...document.querySelectorAll('g.node')]
          .every(g => { const d = g.__data__; return Math.hypot(d.vx, d.vy) < 0.02; })""",
        polling=100,
    )
    fail.hover()
    expect(page.locator("#tl-tip")).to_be_visible()
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=DOCS / "timeline.png")
    viewer.assert_clean()
