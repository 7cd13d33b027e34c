import assert from "node:assert/strict";
import { describe as group, test } from "node:test";

import {
  DEFAULT_SPEED,
  Player,
  SPEEDS,
  anchorsOf,
  bannerText,
  markKind,
  markText,
  parseSpeed,
  placeMarks,
  seqAt,
  speedText,
  stripBins,
  timeAt,
  timeScale,
  timeText,
} from "../timelinemodel.js";

const MIN = 60_000;
const T0 = 29_000_000 * MIN; // a minute boundary
const EPOCH = "e1";

/** A window of 10 minutes from T0: 30 events in minute 0, none in 1..7, 20 in minute 8 (2 failures). */
function overview(extra = {}) {
  return {
    epoch: EPOCH,
    first_seq: 0,
    first_ts: T0,
    last_seq: 50,
    last_ts: T0 + 9 * MIN - 1,
    minutes: [
      [T0 / MIN, 30, 0],
      [T0 / MIN + 8, 20, 2],
    ],
    marks: [
      { seq: 1, type: "session_start", ts: T0 + 1000, session_id: "7f3c2a91-aaaa", agent_id: "main", project: "/home/dev/shop" },
      { seq: 40, type: "tool_fail", ts: T0 + 8 * MIN + 5000, session_id: "7f3c2a91-aaaa", agent_id: "a1", tool: "Bash", agent_type: "general-purpose" },
      { seq: 50, type: "session_end", ts: T0 + 9 * MIN - 1, session_id: "7f3c2a91-aaaa", agent_id: "main", reason: "exit" },
    ],
    ...extra,
  };
}

group("speeds and words", () => {
  test("the speed list, and what a URL may say", () => {
    assert.deepEqual(SPEEDS, [1, 2, 5, 10, 50, 100, "max"]);
    assert.equal(DEFAULT_SPEED, 1);
    assert.equal(parseSpeed("10"), 10);
    assert.equal(parseSpeed("2.5"), 2.5);
    assert.equal(parseSpeed("max"), "max");
    for (const bad of ["0", "101", "-1", "fast", "", null, "1e2"]) assert.equal(parseSpeed(bad), null, bad);
    assert.equal(speedText(10), "10x");
    assert.equal(speedText("max"), "max");
  });

  test("times: a clock today, with the date otherwise; the banner", () => {
    const ts = new Date(2026, 10, 29, 9, 5, 7).getTime();
    assert.equal(timeText(ts, ts + 1000), "09:05:07");
    assert.equal(timeText(ts, ts + 3 * 86_400_000), "2026-11-29 09:05:07");
    assert.equal(timeText(null), "–");
    assert.equal(bannerText(ts, 10, false, ts), "Replay — 09:05:07 — 10x");
    assert.equal(bannerText(ts, "max", true, ts), "Replay — ≈09:05:07 — max");
    assert.equal(bannerText(null, 1, true, ts), "Replay — – — 1x");
  });

  test("markers say what and where", () => {
    const [start, fail, end] = overview().marks;
    assert.equal(markKind(start), "start");
    assert.equal(markKind(end), "end");
    assert.equal(markKind(fail), "fail");
    assert.equal(markKind({ type: "agent_done", outcome: "lost" }), "fail");
    assert.equal(markText(start), "session 7f3c2a91 started in shop");
    assert.equal(markText(end), "session 7f3c2a91 ended (exit)");
    assert.equal(markText(fail), "Bash failed in general-purpose");
    assert.equal(markText({ type: "agent_done", agent_type: "Explore", outcome: "lost" }), "Explore ended: lost");
    assert.equal(markText({ type: "stop_fail", agent_id: "main" }), "orchestrator stopped on an API error");
    const bare = { type: "tool_fail", tool: "Bash", agent_id: "a71be0c94d2f5a38" };
    assert.equal(markText(bare), "Bash failed in agent a71be0c9");
    assert.equal(markText(bare, "general-purpose"), "Bash failed in general-purpose");
  });
});

group("time, x and seq", () => {
  test("the scale maps the window onto the strip, clamped", () => {
    const s = timeScale(overview(), 900);
    assert.equal(s.x(T0), 0);
    assert.equal(s.x(T0 + 9 * MIN - 1), 900);
    assert.equal(s.x(T0 - MIN), 0);
    assert.equal(s.x(T0 + 99 * MIN), 900);
    assert.ok(Math.abs(s.x(T0 + 3 * MIN) - 300) < 0.01);
    assert.ok(Math.abs(s.ts(s.x(T0 + 123_456)) - (T0 + 123_456)) < 1);
    // A replay past the window's end stretches it; an empty window is still a strip.
    assert.equal(timeScale(overview(), 900, T0 + 18 * MIN).x(T0 + 9 * MIN), 450);
    // Inset: the ends sit 6 px in, and x outside them still maps to the ends.
    const inset = timeScale(overview(), 912, null, 6);
    assert.equal(inset.x(T0), 6);
    assert.equal(inset.x(T0 + 9 * MIN - 1), 906);
    assert.equal(inset.ts(0), T0);
    assert.equal(inset.ts(912), T0 + 9 * MIN - 1);
    assert.ok(Math.abs(inset.x(T0 + 3 * MIN) - 306) < 0.01);
    const empty = timeScale({ first_ts: T0, last_ts: T0 }, 100);
    assert.equal(empty.x(T0), 0);
    assert.equal(empty.span, 1000);
  });

  test("anchors: ends, markers and minutes; seq never falls as time goes on", () => {
    const anchors = anchorsOf(overview());
    assert.deepEqual(anchors[0], [0, T0]);
    assert.deepEqual(anchors.at(-1), [50, T0 + 9 * MIN - 1]);
    for (let i = 1; i < anchors.length; i++) {
      assert.ok(anchors[i][1] >= anchors[i - 1][1] && anchors[i][0] >= anchors[i - 1][0], JSON.stringify(anchors));
    }
    // Minute 8 starts after all of minute 0's events: the idle minutes between hold seq 30.
    assert.ok(anchors.some(([s, t]) => s === 30 && t === T0 + 8 * MIN), JSON.stringify(anchors));
    assert.deepEqual(anchorsOf({ first_seq: null }), []);
  });

  test("seqAt and timeAt: exact at markers and ends, flat through idle time, interpolated inside a minute", () => {
    const anchors = anchorsOf(overview());
    assert.equal(seqAt(anchors, T0), 0);
    assert.equal(seqAt(anchors, T0 - 5), 0);
    assert.equal(seqAt(anchors, T0 + 1000), 1);
    assert.equal(seqAt(anchors, T0 + 8 * MIN + 5000), 40);
    assert.equal(seqAt(anchors, T0 + 99 * MIN), 50);
    assert.equal(seqAt(anchors, T0 + 4 * MIN), 30); // idle: the last event before it
    const inMinute = seqAt(anchors, T0 + 30_000);
    assert.ok(inMinute > 1 && inMinute < 30, inMinute);
    assert.equal(timeAt(anchors, 40), T0 + 8 * MIN + 5000);
    assert.equal(timeAt(anchors, 0), T0);
    assert.equal(timeAt(anchors, 50), T0 + 9 * MIN - 1);
    const t = timeAt(anchors, 45);
    assert.ok(t > T0 + 8 * MIN + 5000 && t < T0 + 9 * MIN, t);
    // Monotone both ways across the window.
    let previous = -1;
    for (let x = 0; x <= 900; x += 7) {
      const seq = seqAt(anchors, timeScale(overview(), 900).ts(x));
      assert.ok(seq >= previous && seq >= 0 && seq <= 50);
      previous = seq;
    }
    assert.equal(seqAt([], T0), null);
    assert.equal(timeAt([], 3), null);
  });

  test("a window cut mid-minute: counts from the end still line up", () => {
    const cut = overview({ first_seq: 20, first_ts: T0 + 40_000 }); // minute 0 still counts 30, 20 of them cut
    const anchors = anchorsOf(cut);
    assert.deepEqual(anchors[0], [20, T0 + 40_000]);
    assert.ok(anchors.every(([s]) => s >= 20 && s <= 50));
    assert.equal(seqAt(anchors, T0 + 5 * MIN), 30);
  });
});

group("the density strip", () => {
  test("one bar per minute when minutes are wide; failures kept; sums preserved", () => {
    const s = timeScale(overview(), 900); // 100 px a minute
    const bins = stripBins(overview().minutes, s);
    assert.equal(bins.length, 2);
    assert.deepEqual(
      bins.map((b) => [Math.round(b.x0), Math.round(b.x1), b.events, b.failures]),
      [
        [0, 100, 30, 0],
        [800, 900, 20, 2],
      ],
    );
  });

  test("narrow minutes share columns, and every event is still counted", () => {
    const minutes = [];
    let total = 0;
    let fails = 0;
    for (let m = 0; m < 1440; m++) {
      const events = (m * 7) % 13;
      minutes.push([T0 / MIN + m, events, m % 100 === 0 ? 1 : 0]);
      total += events;
      fails += m % 100 === 0 ? 1 : 0;
    }
    const s = timeScale({ first_ts: T0, last_ts: T0 + 1440 * MIN }, 600); // a day on 600 px
    const bins = stripBins(minutes, s, 3);
    assert.ok(bins.length <= 200, bins.length);
    assert.equal(bins.reduce((n, b) => n + b.events, 0), total);
    assert.equal(bins.reduce((n, b) => n + b.failures, 0), fails);
    for (const b of bins) assert.ok(b.x0 >= 0 && b.x1 <= 600 && b.x1 > b.x0, JSON.stringify(b));
    for (let i = 1; i < bins.length; i++) assert.ok(bins[i].x0 >= bins[i - 1].x1);
  });

  test("a few seconds of window: the minute is clipped to it; a minute outside it stays countable", () => {
    const w = { first_ts: T0 + 10_000, last_ts: T0 + 13_000 };
    const s = timeScale(w, 500);
    const bins = stripBins([[T0 / MIN - 1, 4, 0], [T0 / MIN, 44, 1]], s);
    assert.equal(bins.reduce((n, b) => n + b.events, 0), 48);
    const main = bins.find((b) => b.events === 44);
    assert.equal(main.x0, 0);
    assert.equal(main.x1, 500);
    const outside = bins.find((b) => b.events === 4);
    assert.ok(outside.x1 - outside.x0 >= 1);
  });
});

group("markers", () => {
  test("placed by time; close ones of one kind share a marker; kinds never merge", () => {
    const s = timeScale(overview(), 900);
    const groups = placeMarks(overview().marks, s);
    assert.deepEqual(
      groups.map((g) => [g.kind, g.seq, g.marks.length]),
      [
        ["start", 1, 1],
        ["fail", 40, 1],
        ["end", 50, 1],
      ],
    );
    const crowd = [];
    for (let i = 0; i < 10; i++) crowd.push({ seq: 100 + i, type: "tool_fail", ts: T0 + i * 10 });
    crowd.push({ seq: 120, type: "session_start", ts: T0 + 50 });
    const merged = placeMarks(crowd, s);
    assert.deepEqual(
      merged.map((g) => [g.kind, g.seq, g.marks.length]),
      [
        ["fail", 100, 10],
        ["start", 120, 1],
      ],
    );
    assert.deepEqual(placeMarks([{ seq: 1, type: "tool_fail" }], s), []); // no time: not placed
  });
});

group("Player", () => {
  const snap = (seq, extra = {}) => ({
    type: "snapshot",
    seq,
    epoch: EPOCH,
    alive: [],
    replay: { speed: 10, window: { epoch: EPOCH, first_seq: 0, first_ts: T0, last_seq: 50, last_ts: T0 + 9 * MIN } },
    ...extra,
  });
  const ev = (seq, ts = T0 + seq * 1000) => ({ type: "event", seq, epoch: EPOCH, data: { ts, type: "tool_use", session_id: "s" } });
  const seqs = (out) => out.apply.map((a) => [a.msg.type === "snapshot" ? `s${a.msg.seq}` : a.msg.seq, a.silent]);

  test("a URL point opens as written; a snapshot at the window's start has the window's time", () => {
    const p = new Player();
    assert.equal(p.mode, "live");
    assert.equal(p.openAt("0"), "0");
    assert.equal(p.mode, "replay");
    assert.equal(p.target, 0);
    const out = p.frame(snap(0), { seq: null, epoch: null });
    assert.deepEqual(seqs(out), [["s0", true]]);
    assert.equal(out.apply[0].msg.reset, true);
    assert.equal(p.ts, T0);
    assert.deepEqual(out.send, []);
    assert.deepEqual(seqs(p.frame(ev(1), { seq: 0, epoch: EPOCH })), [[1, false]]);
    assert.equal(p.seq, 1);
    assert.equal(p.ts, T0 + 1000);
    assert.equal(p.openAt("t1764400000000"), "t1764400000000");
    assert.equal(p.target, null);
  });

  test("a seek inside the known window opens one early and lands on its seq silently", () => {
    const p = new Player();
    p.know(overview());
    assert.equal(p.seek(20, { seq: 48, ts: null }), "19");
    assert.equal(p.landing, 20);
    const snapOut = p.frame(snap(19), { seq: 48, epoch: EPOCH });
    assert.equal(snapOut.apply[0].msg.reset, true); // replaces the model: no pulses, no strays
    assert.deepEqual(seqs(p.frame(ev(20), { seq: 19, epoch: EPOCH })), [[20, true]]);
    assert.equal(p.landing, null);
    assert.equal(p.ts, T0 + 20_000);
    assert.deepEqual(seqs(p.frame(ev(21), { seq: 20, epoch: EPOCH })), [[21, false]]);
    // At the window's first seq, nothing comes before it: opened there.
    assert.equal(p.seek(0, { seq: 21 }), "0");
    assert.equal(p.landing, null);
  });

  test("a seek to the seq the page holds keeps the model (no reset) and its time", () => {
    const p = new Player();
    p.know(overview());
    assert.equal(p.seek(30, { seq: 30, ts: 12345 }), "30");
    const out = p.frame(snap(30), { seq: 30, epoch: EPOCH });
    assert.equal(out.apply[0].msg.reset, undefined);
    assert.equal(p.ts, 12345);
    // Another epoch at the same seq is another history: replaced.
    p.seek(30, { seq: 30, ts: 1 });
    assert.equal(p.frame(snap(30), { seq: 30, epoch: "other" }).apply[0].msg.reset, true);
  });

  test("paused: events the relay sent anyway are held; step applies one; play applies the rest", () => {
    const p = new Player();
    p.openAt("5");
    p.frame(snap(5), {});
    assert.deepEqual(p.pause().send, [{ type: "pause" }]);
    assert.deepEqual(seqs(p.frame(ev(6), {})), []);
    assert.deepEqual(seqs(p.frame(ev(7), {})), []);
    assert.equal(p.seq, 5);
    const stepped = p.step();
    assert.deepEqual(seqs(stepped), [[6, false]]);
    assert.deepEqual(stepped.send, []);
    assert.equal(p.seq, 6);
    const played = p.play();
    assert.deepEqual(seqs(played), [[7, false]]);
    assert.deepEqual(played.send, [{ type: "play" }]);
    assert.deepEqual(p.held, []);
    assert.deepEqual(p.pause().send, [{ type: "pause" }]);
    assert.deepEqual(p.pause().send, []); // already paused: nothing more to say
  });

  test("step with nothing held asks for one event, then pauses again; extra ones are held", () => {
    const p = new Player();
    p.openAt("5");
    p.frame(snap(5), {});
    p.pause();
    assert.deepEqual(p.step().send, [{ type: "play" }]);
    const got = p.frame(ev(6), {});
    assert.deepEqual(seqs(got), [[6, false]]);
    assert.deepEqual(got.send, [{ type: "pause" }]);
    assert.deepEqual(seqs(p.frame(ev(7), {})), []);
    assert.equal(p.held.length, 1);
    // Step while playing: no play needed, the next event comes anyway.
    const q = new Player();
    q.openAt("5");
    q.frame(snap(5), {});
    assert.deepEqual(q.step().send, []);
    assert.deepEqual(q.frame(ev(6), {}).send, [{ type: "pause" }]);
    assert.equal(q.playing, false);
  });

  test("a pause during a landing waits for it: the landing event must not be held back", () => {
    const p = new Player();
    p.know(overview());
    p.playing = false; // paused before the seek (a pause in live, or a seek while paused)
    assert.equal(p.seek(10, { seq: 40 }), "9");
    const opened = p.frame(snap(9), { seq: 40, epoch: EPOCH });
    assert.deepEqual(opened.send, []);
    const landed = p.frame(ev(10), { seq: 9, epoch: EPOCH });
    assert.deepEqual(seqs(landed), [[10, true]]);
    assert.deepEqual(landed.send, [{ type: "pause" }]);
    assert.deepEqual(seqs(p.frame(ev(11), {})), []); // held
    // Paused without a landing: the pause goes with the snapshot.
    assert.equal(p.seek(0, { seq: 10 }), "0");
    assert.deepEqual(p.frame(snap(0), { seq: 10, epoch: EPOCH }).send, [{ type: "pause" }]);
  });

  test("the end of the window, then new events; speed; refusal; back to live", () => {
    const p = new Player();
    p.openAt("48");
    p.frame(snap(48), {});
    p.frame(ev(49), {});
    assert.equal(p.ended, false);
    p.frame({ type: "replay_end", seq: 49 }, {});
    assert.equal(p.ended, true);
    assert.deepEqual(p.step().send, [{ type: "pause" }]); // nothing to step to: it pauses there
    p.frame(ev(50), {});
    assert.equal(p.held.length, 1);
    assert.equal(p.ended, false);
    assert.deepEqual(p.setSpeed(50).send, [{ type: "speed", speed: 50 }]);
    assert.deepEqual(p.setSpeed("max").send, [{ type: "speed", speed: "max" }]);
    assert.deepEqual(p.frame({ type: "error", error: "bad_control", message: "no" }, {}).apply, []);
    assert.equal(p.notice, "no");
    assert.equal(p.mode, "replay");
    const window = { epoch: EPOCH, first_seq: 0, first_ts: T0, last_seq: 50, last_ts: T0 + 9 * MIN };
    p.frame({ type: "error", error: "replay_outside_window", message: "seq 99999 is outside", window }, {});
    assert.equal(p.mode, "refused");
    assert.equal(p.error.message, "seq 99999 is outside");
    assert.deepEqual(p.bounds, window);
    assert.deepEqual(p.frame(ev(51), {}).apply, []); // a refused replay applies nothing
    assert.deepEqual(p.play().send, []);
    p.live();
    assert.equal(p.mode, "live");
    assert.equal(p.playing, true);
    assert.equal(p.error, null);
    assert.equal(p.speed, "max"); // kept for the next replay
    assert.deepEqual(p.setSpeed(2).send, []); // live: nothing to tell a relay
  });

  test("the window: a newer one replaces an older one of the same epoch, never the reverse", () => {
    const p = new Player();
    p.know(overview());
    p.know({ ...overview(), last_seq: 10 });
    assert.equal(p.bounds.last_seq, 50);
    p.know({ ...overview(), last_seq: 60 });
    assert.equal(p.bounds.last_seq, 60);
    p.know({ ...overview(), epoch: "new", last_seq: 3 });
    assert.equal(p.bounds.last_seq, 3);
    p.know({ first_seq: null });
    assert.equal(p.bounds.last_seq, 3);
  });
});
