import assert from "node:assert/strict";
import { describe as group, test } from "node:test";

import { BACKOFF_MAX_MS, backoffDelay, streamUrl } from "../connection.js";
import { GraphModel, LEAVE_MS, modelFamily } from "../model.js";
import { MIN_SESSION_GAP, describe, formatAge, labelOf, sessionAnchors, view, waitText, waitedFor } from "../present.js";

const S = "sess-1";
const EPOCH = "e1";
const T0 = 1_700_000_000_000;

function record(agentId, extra = {}) {
  const main = agentId === "main";
  return {
    session_id: S,
    agent_id: agentId,
    parent_id: main ? null : "main",
    agent_type: main ? "main" : "Explore",
    model: main ? "claude-opus-4-5" : "haiku",
    description: main ? null : "map the module",
    tool_use_id: null,
    spawned_at: T0,
    last_seen: T0,
    tool_count: 0,
    ...extra,
  };
}

function snapshot(seq, alive = [record("main")], extra = {}) {
  return { type: "snapshot", seq, epoch: EPOCH, alive, ...extra };
}

/** A model that has applied a snapshot at `seq`, plus a helper sending contiguous events after it. */
function started(seq = 10, alive) {
  const model = new GraphModel();
  model.receive(snapshot(seq, alive), T0);
  let next = seq;
  const send = (data, now = T0) =>
    model.receive(
      { type: "event", seq: ++next, epoch: EPOCH, data: { ts: T0, session_id: S, agent_id: "main", ...data } },
      now,
    );
  return { model, send };
}

const spawn = (agentId, extra = {}) => ({
  type: "agent_spawn",
  agent_id: agentId,
  parent_id: "main",
  agent_type: "general-purpose",
  model: "claude-sonnet-4-5",
  description: "run the tests",
  tool_use_id: `toolu_${agentId}`,
  background: false,
  link: "confirmed",
  ...extra,
});

group("modelFamily", () => {
  test("matches by substring, case-insensitively", () => {
    assert.equal(modelFamily("claude-sonnet-4-5"), "sonnet");
    assert.equal(modelFamily("sonnet"), "sonnet");
    assert.equal(modelFamily("Claude-Opus-4-1"), "opus");
    assert.equal(modelFamily("HAIKU"), "haiku");
  });
  test("anything else is other", () => {
    assert.equal(modelFamily("gpt-5"), "other");
    assert.equal(modelFamily(null), "other");
    assert.equal(modelFamily(undefined), "other");
    assert.equal(modelFamily(""), "other");
  });
});

group("snapshot", () => {
  test("draws every alive record, keyed session/agent, with its family", () => {
    const model = new GraphModel();
    const result = model.receive(snapshot(5, [record("main"), record("a1", { tool_count: 3 })]), T0);
    assert.deepEqual(result.effects, [{ type: "reset" }]);
    assert.deepEqual([...model.nodes.keys()], [`${S}/main`, `${S}/a1`]);
    assert.equal(model.nodes.get(`${S}/a1`).family, "haiku");
    assert.equal(model.nodes.get(`${S}/main`).family, "main");
    assert.equal(model.seq, 5);
    assert.equal(model.alive, 2);
    assert.equal(model.stats.spawned, 1);
    assert.equal(model.stats.tools, 3);
  });

  test("a sub-agent without its orchestrator in the snapshot still gets one", () => {
    const model = new GraphModel();
    model.receive(snapshot(1, [record("a1")]), T0);
    assert.ok(model.nodes.has(`${S}/main`));
    assert.equal(model.links().length, 1);
  });

  test("reset throws everything away, even nodes with the same id", () => {
    const { model, send } = started(10, [record("main"), record("a1")]);
    const before = model.nodes.get(`${S}/a1`);
    send(spawn("a2"));
    model.receive(snapshot(3, [record("main"), record("a1")], { reset: true }), T0);
    assert.deepEqual([...model.nodes.keys()], [`${S}/main`, `${S}/a1`]);
    assert.notEqual(model.nodes.get(`${S}/a1`), before);
    assert.equal(model.seq, 3);
  });

  test("a plain snapshot reconciles: reuses node objects by id, drops the ones no longer alive", () => {
    const { model } = started(10, [record("main"), record("a1"), record("a2")]);
    const a1 = model.nodes.get(`${S}/a1`);
    a1.x = 42; // the simulation's position must survive
    const result = model.receive(snapshot(12, [record("main"), record("a1", { tool_count: 7 })]), T0);
    assert.deepEqual(result.effects, []);
    assert.equal(model.nodes.get(`${S}/a1`), a1);
    assert.equal(a1.x, 42);
    assert.equal(a1.toolCount, 7);
    assert.ok(!model.nodes.has(`${S}/a2`));
  });

  test("a snapshot from another epoch is a reset", () => {
    const { model } = started(10, [record("main"), record("a1")]);
    const a1 = model.nodes.get(`${S}/a1`);
    const result = model.receive({ ...snapshot(2, [record("main"), record("a1")]), epoch: "e2" }, T0);
    assert.deepEqual(result.effects, [{ type: "reset" }]);
    assert.notEqual(model.nodes.get(`${S}/a1`), a1);
    assert.equal(model.epoch, "e2");
  });
});

group("sequencing", () => {
  test("events apply in order and advance seq", () => {
    const { model, send } = started(10);
    assert.deepEqual(send(spawn("a1")).effects, [{ type: "spawn", id: `${S}/a1` }]);
    assert.equal(model.seq, 11);
    assert.deepEqual(model.resumeParams(), { since: 11, epoch: EPOCH });
  });

  test("an event at or below the last applied seq is never drawn twice", () => {
    const { model } = started(10);
    const event = { type: "event", seq: 11, epoch: EPOCH, data: { type: "tool_use", ts: T0, session_id: S, agent_id: "main", tool: "Read" } };
    assert.equal(model.receive(event, T0).effects.length, 1);
    const again = model.receive(event, T0);
    assert.equal(again.ignored, "duplicate");
    assert.deepEqual(again.effects, []);
    assert.equal(model.receive({ ...event, seq: 3 }, T0).ignored, "duplicate");
    assert.equal(model.nodes.get(`${S}/main`).toolCount, 1);
    assert.equal(model.stats.tools, 1);
  });

  test("a gap asks for a resync and applies nothing", () => {
    const { model } = started(10);
    const result = model.receive({ type: "event", seq: 13, epoch: EPOCH, data: { ...spawn("a1"), ts: T0, session_id: S } }, T0);
    assert.equal(result.resync, "gap");
    assert.equal(model.seq, 10);
    assert.ok(!model.nodes.has(`${S}/a1`));
  });

  test("another epoch asks for a resync", () => {
    const { model } = started(10);
    const result = model.receive({ type: "event", seq: 11, epoch: "other", data: { type: "prompt", ts: T0, session_id: S, agent_id: "main" } }, T0);
    assert.equal(result.resync, "epoch");
    assert.equal(model.seq, 10);
  });

  test("an event before any snapshot asks for one", () => {
    const model = new GraphModel();
    assert.ok(model.receive({ type: "event", seq: 1, epoch: EPOCH, data: {} }, T0).resync);
    assert.equal(model.resumeParams(), null);
  });

  test("a ping ahead of us reveals lost events; one at our seq is fine", () => {
    const { model } = started(10);
    assert.deepEqual(model.receive({ type: "ping", seq: 10, epoch: EPOCH }, T0), { effects: [] });
    assert.equal(model.receive({ type: "ping", seq: 12, epoch: EPOCH }, T0).resync, "gap");
    assert.equal(model.receive({ type: "ping", seq: 10, epoch: "x" }, T0).resync, "epoch");
  });

  test("resume after a replay continues without duplicates", () => {
    const { model, send } = started(10);
    send(spawn("a1"));
    send({ type: "tool_use", agent_id: "a1", tool: "Grep" });
    // The connection drops; the server replays from since+1, overlapping what we had.
    const { since } = model.resumeParams();
    assert.equal(since, 12);
    const replay = [11, 12, 13].map((seq) => ({
      type: "event",
      seq,
      epoch: EPOCH,
      data: { type: "tool_use", ts: T0, session_id: S, agent_id: "a1", tool: "Read" },
    }));
    const drawn = replay.flatMap((m) => model.receive(m, T0).effects);
    assert.equal(drawn.length, 1);
    assert.equal(model.nodes.get(`${S}/a1`).toolCount, 2);
  });

  test("the last event's age runs on our clock, not the hook's", () => {
    const { model, send } = started(10);
    send({ type: "prompt", ts: T0 - 3_600_000 }, T0 + 5);
    assert.equal(model.stats.lastEventTs, T0 + 5);
  });

  test("unknown frames and malformed events are ignored without breaking the sequence", () => {
    const { model } = started(10);
    assert.ok(model.receive({ type: "hello" }, T0).ignored);
    assert.ok(model.receive(null, T0).ignored);
    assert.deepEqual(model.receive({ type: "event", seq: 11, epoch: EPOCH, data: null }, T0).effects, []);
    assert.equal(model.seq, 11);
  });
});

group("events", () => {
  test("agent_spawn adds a node linked to its parent, coloured by model", () => {
    const { model, send } = started();
    send(spawn("a1", { model: "opus" }));
    const node = model.nodes.get(`${S}/a1`);
    assert.equal(node.family, "opus");
    assert.equal(node.agentType, "general-purpose");
    assert.equal(node.description, "run the tests");
    assert.equal(model.stats.spawned, 1);
    assert.deepEqual(
      model.links().map((l) => [l.source.id, l.target.id]),
      [[`${S}/main`, `${S}/a1`]],
    );
  });

  test("nested sub-agents link to the agent that spawned them, not to main", () => {
    const { model, send } = started();
    send(spawn("a1"));
    send(spawn("a2", { agent_id: "a2", parent_id: "a1", model: "haiku" }));
    const links = Object.fromEntries(model.links().map((l) => [l.target.id, l.source.id]));
    assert.equal(links[`${S}/a2`], `${S}/a1`);
    assert.equal(links[`${S}/a1`], `${S}/main`);
  });

  test("when a parent is gone its children hang from the orchestrator", () => {
    const { model, send } = started();
    send(spawn("a1"));
    send(spawn("a2", { parent_id: "a1" }));
    send({ type: "agent_done", agent_id: "a1", outcome: "success" }, T0);
    model.sweep(T0 + LEAVE_MS);
    const links = Object.fromEntries(model.links().map((l) => [l.target.id, l.source.id]));
    assert.equal(links[`${S}/a2`], `${S}/main`);
  });

  test("tool_use pulses the agent that made the call, including inside sub-agents", () => {
    const { model, send } = started();
    send(spawn("a1"));
    const { effects } = send({ type: "tool_use", agent_id: "a1", tool: "Bash", tool_use_id: "t1" });
    assert.deepEqual(effects, [{ type: "pulse", id: `${S}/a1`, label: "Bash", skill: false }]);
    assert.equal(model.nodes.get(`${S}/a1`).toolCount, 1);
    assert.equal(model.nodes.get(`${S}/main`).toolCount, 0);
    assert.equal(model.stats.tools, 1);
  });

  test("skill_use pulses with the skill name, styled as a skill", () => {
    const { send } = started();
    const { effects } = send({ type: "skill_use", tool: "Skill", skill: "pdf" });
    assert.deepEqual(effects, [{ type: "pulse", id: `${S}/main`, label: "pdf", skill: true }]);
  });

  test("tool_fail is a failure pulse; tool_done is a quiet tick", () => {
    const { send } = started();
    send(spawn("a1"));
    assert.deepEqual(send({ type: "tool_fail", agent_id: "a1", tool: "Bash", error: "Exit code 1" }).effects, [
      { type: "fail", id: `${S}/a1`, label: "Bash" },
    ]);
    assert.deepEqual(send({ type: "tool_done", agent_id: "a1", tool: "Bash" }).effects, [{ type: "tick", id: `${S}/a1` }]);
  });

  test("an event for an unknown agent creates it under main (and main too) instead of dropping it", () => {
    const model = new GraphModel();
    model.receive(snapshot(1, []), T0);
    const result = model.receive(
      { type: "event", seq: 2, epoch: EPOCH, data: { type: "tool_use", ts: T0, session_id: "s2", agent_id: "ghost", tool: "Read" } },
      T0,
    );
    assert.deepEqual(
      result.effects.map((e) => e.type),
      ["spawn", "spawn", "pulse"],
    );
    assert.equal(model.nodes.get("s2/ghost").parentId, "main");
    assert.equal(model.nodes.get("s2/main").agentType, "main");
  });

  test("a spawn for a node first seen through its tool calls fills in the details, no duplicate", () => {
    const { model, send } = started();
    send({ type: "tool_use", agent_id: "a1", tool: "Read" });
    send(spawn("a1", { model: "haiku", agent_type: "Explore" }));
    assert.equal(model.nodes.size, 2);
    assert.equal(model.nodes.get(`${S}/a1`).family, "haiku");
    assert.equal(model.nodes.get(`${S}/a1`).agentType, "Explore");
  });

  test("agent_done flashes the outcome, then the node leaves after the animation", () => {
    const { model, send } = started();
    send(spawn("a1"));
    const { effects } = send({ type: "agent_done", agent_id: "a1", outcome: "partial", cost_usd: 0.0123 }, T0 + 10);
    assert.deepEqual(effects, [{ type: "done", id: `${S}/a1`, outcome: "partial" }]);
    const node = model.nodes.get(`${S}/a1`);
    assert.equal(node.state, "done");
    assert.equal(node.costUsd, 0.0123);
    assert.equal(model.alive, 1);
    assert.equal(model.stats.done, 1);
    assert.equal(model.sweep(T0 + 10 + LEAVE_MS - 1), 0);
    assert.equal(model.sweep(T0 + 10 + LEAVE_MS), 1);
    assert.ok(!model.nodes.has(`${S}/a1`));
  });

  test("a late event for a finished agent does not bring it back", () => {
    const { model, send } = started();
    send(spawn("a1"));
    send({ type: "agent_done", agent_id: "a1", outcome: "success" });
    assert.deepEqual(send({ type: "tool_use", agent_id: "a1", tool: "Read" }).effects, []);
    model.sweep(T0 + LEAVE_MS);
    assert.deepEqual(send({ type: "tool_done", agent_id: "a1", tool: "Read" }).effects, []);
    assert.deepEqual(send({ type: "tool_use", agent_id: "a1", tool: "Read" }).effects, []);
    assert.ok(!model.nodes.has(`${S}/a1`));
  });

  test("a repeated agent_done is idempotent", () => {
    const { model, send } = started();
    send(spawn("a1"));
    send({ type: "agent_done", agent_id: "a1", outcome: "success" });
    assert.deepEqual(send({ type: "agent_done", agent_id: "a1", outcome: "success" }).effects, []);
    assert.equal(model.nodes.get(`${S}/a1`).outcome, "success");
  });

  test("session_end takes the orchestrator and everything left of that session, and only that session", () => {
    const { model, send } = started();
    send(spawn("a1"));
    send({ type: "session_start", session_id: "other", model: "sonnet" });
    const { effects } = send({ type: "session_end" });
    assert.deepEqual(
      effects.map((e) => [e.id, e.outcome]),
      [
        [`${S}/main`, "ended"],
        [`${S}/a1`, "lost"],
      ],
    );
    model.sweep(T0 + LEAVE_MS);
    assert.deepEqual([...model.nodes.keys()], ["other/main"]);
    assert.equal(model.alive, 1);
  });

  test("a session can start again after it ended", () => {
    const { model, send } = started();
    send({ type: "session_end" });
    send({ type: "session_start", project: "acme" });
    assert.equal(model.nodes.get(`${S}/main`).state, "alive");
    assert.equal(model.nodes.get(`${S}/main`).project, "acme");
  });

  test("prompt pulses the orchestrator", () => {
    const { send } = started();
    assert.deepEqual(send({ type: "prompt" }).effects, [{ type: "prompt", id: `${S}/main` }]);
  });

  test("a permission prompt notification alone no longer marks waiting: ingest says so with agent_update", () => {
    const { model, send } = started();
    send(spawn("a1"));
    send({ type: "notification", agent_id: "a1", notification_type: "permission_prompt", message: "needs Bash" });
    assert.equal(model.nodes.get(`${S}/a1`).state, "alive");
    assert.equal(model.nodes.get(`${S}/a1`).waiting, null);
  });

  test("other notifications do not mark waiting", () => {
    const { model, send } = started();
    send({ type: "notification", notification_type: "idle_prompt", message: "idle" });
    assert.equal(model.nodes.get(`${S}/main`).state, "alive");
  });

  test("version changes with the node set, rev with anything visible", () => {
    const { model, send } = started();
    const { version, rev } = model;
    send({ type: "tool_use", tool: "Read" });
    assert.equal(model.version, version);
    assert.ok(model.rev > rev);
    send(spawn("a1"));
    assert.ok(model.version > version);
  });

  test("payload text is kept verbatim (the page renders it as text)", () => {
    const { model, send } = started();
    const evil = "<img src=x onerror=alert(1)>";
    send(spawn("a1", { description: evil, agent_type: evil }));
    const { effects } = send({ type: "tool_use", agent_id: "a1", tool: evil });
    assert.equal(model.nodes.get(`${S}/a1`).description, evil);
    assert.equal(effects[0].label, evil);
  });
});

group("helpers", () => {
  test("backoff doubles from 1 s to 30 s with jitter", () => {
    assert.equal(backoffDelay(0, () => 1), 1000);
    assert.equal(backoffDelay(0, () => 0), 500);
    assert.equal(backoffDelay(3, () => 1), 8000);
    assert.equal(backoffDelay(20, () => 1), BACKOFF_MAX_MS);
    for (let attempt = 0; attempt < 12; attempt++) {
      const d = backoffDelay(attempt);
      assert.ok(d >= 500 && d <= BACKOFF_MAX_MS, `attempt ${attempt}: ${d}`);
    }
  });

  test("stream URL follows the page's scheme and host, passes the token and resume point", () => {
    assert.equal(streamUrl(new URL("http://h:8000/"), null), "ws://h:8000/stream");
    assert.equal(streamUrl(new URL("https://h/?token=abc"), null), "wss://h/stream?token=abc");
    assert.equal(
      streamUrl(new URL("http://h/?token=a%26b"), { since: 41, epoch: "e x" }),
      "ws://h/stream?token=a%26b&since=41&epoch=e+x",
    );
  });

  test("one session sits in the centre", () => {
    assert.deepEqual([...sessionAnchors(["a"], 1000, 600).values()], [{ x: 500, y: 300 }]);
  });

  test("several sessions never overlap, even on a narrow window", () => {
    for (const [w, h] of [
      [1280, 720],
      [800, 600],
      [3840, 2160],
    ]) {
      for (let n = 2; n <= 9; n++) {
        const points = [...sessionAnchors([...Array(n).keys()].map(String), w, h).values()];
        assert.equal(points.length, n);
        for (let i = 0; i < n; i++)
          for (let j = i + 1; j < n; j++) {
            const d = Math.hypot(points[i].x - points[j].x, points[i].y - points[j].y);
            assert.ok(d >= MIN_SESSION_GAP, `${w}x${h} n=${n}: ${i},${j} only ${d} apart`);
          }
      }
    }
  });

  test("ages read naturally", () => {
    assert.equal(formatAge(-5), "0 s");
    assert.equal(formatAge(12_400), "12 s");
    assert.equal(formatAge(125_000), "2 min 5 s");
    assert.equal(formatAge(3_726_000), "1 h 2 min");
  });

  test("tooltip lines say type, description, model, age, tools and cost when known", () => {
    const { model, send } = started();
    send(spawn("a1", { description: "x".repeat(500) }));
    const node = model.nodes.get(`${S}/a1`);
    let lines = describe(node, T0 + 65_000);
    assert.equal(lines[0], "general-purpose");
    assert.equal(lines[1].length, 140);
    assert.ok(lines.includes("model: claude-sonnet-4-5 (sonnet)"));
    assert.ok(lines.includes("age: 1 min 5 s"));
    assert.ok(lines.includes("tool calls: 0"));
    assert.ok(!lines.some((l) => l.startsWith("cost")));
    node.costUsd = 0.5;
    lines = describe(node, T0);
    assert.ok(lines.includes("cost: $0.5000"));
  });
});

// ---- issue 8: the stream is the truth (provisional ids, agent_update, stop_fail, waiting from ingest)

const STAND_IN = "toolu_01Ve4stand";
const update = (agentId, fields = {}) => ({ type: "agent_update", agent_id: agentId, ...fields });
// What agent_update carries on a re-key: every field.
const rekey = (previousId, agentId, extra = {}) =>
  update(agentId, {
    previous_id: previousId,
    parent_id: "main",
    agent_type: "general-purpose",
    model: "claude-sonnet-4-5",
    description: "run the tests",
    tool_use_id: previousId,
    background: false,
    link: "confirmed",
    provisional: false,
    waiting: null,
    waiting_tool: null,
    waiting_since: null,
    waited_ms: 0,
    ...extra,
  });

group("provisional ids and re-keys", () => {
  test("a sub-agent is drawn at its spawn call under its stand-in id, marked provisional", () => {
    const { model, send } = started();
    const { effects } = send(spawn(STAND_IN, { provisional: true, model: null }));
    assert.deepEqual(effects, [{ type: "spawn", id: `${S}/${STAND_IN}` }]);
    const node = model.nodes.get(`${S}/${STAND_IN}`);
    assert.equal(node.provisional, true);
    assert.equal(node.family, "other");
    assert.ok(describe(node, T0).includes("id not known yet"));
  });

  test("a re-key keeps the same node object, its counts, spawn time and place, and counts no spawn", () => {
    const { model, send } = started();
    send(spawn(STAND_IN, { provisional: true }), T0);
    send({ type: "tool_use", agent_id: STAND_IN, tool: "Read", ts: T0 + 5 });
    send({ type: "tool_use", agent_id: STAND_IN, tool: "Grep", ts: T0 + 6 });
    send(spawn("later"));
    const node = model.nodes.get(`${S}/${STAND_IN}`);
    node.x = 42; // the simulation's position
    const { version } = model;
    const { effects } = send(rekey(STAND_IN, "a1", { ts: T0 + 50 }));
    assert.deepEqual(effects, [{ type: "rekey", from: `${S}/${STAND_IN}`, to: `${S}/a1` }]);
    assert.equal(model.nodes.get(`${S}/a1`), node);
    assert.ok(!model.nodes.has(`${S}/${STAND_IN}`));
    assert.deepEqual([...model.nodes.keys()], [`${S}/main`, `${S}/a1`, `${S}/later`], "same place in the order");
    assert.equal(node.id, `${S}/a1`);
    assert.equal(node.agentId, "a1");
    assert.equal(node.x, 42);
    assert.equal(node.toolCount, 2);
    assert.equal(node.spawnedAt, T0);
    assert.equal(node.provisional, false);
    assert.equal(model.stats.spawned, 2);
    assert.ok(model.version > version, "the links must be rebuilt");
    assert.ok(!describe(node, T0).includes("id not known yet"));
    // Later events under the real id land on the same node.
    send({ type: "tool_use", agent_id: "a1", tool: "Bash" });
    assert.equal(node.toolCount, 3);
    assert.equal(model.nodes.size, 3);
  });

  test("children that named the stand-in as parent follow the re-key", () => {
    const { model, send } = started();
    send(spawn(STAND_IN, { provisional: true }));
    send(spawn("toolu_child", { provisional: true, parent_id: STAND_IN }));
    send(rekey(STAND_IN, "a1"));
    assert.equal(model.nodes.get(`${S}/toolu_child`).parentId, "a1");
    const links = Object.fromEntries(model.links().map((l) => [l.target.id, l.source.id]));
    assert.equal(links[`${S}/toolu_child`], `${S}/a1`);
    assert.equal(links[`${S}/a1`], `${S}/main`);
  });

  test("an update with previous_id for a node never drawn is a spawn of the real id", () => {
    const { model, send } = started();
    const { effects } = send(rekey(STAND_IN, "a1", { model: "haiku", agent_type: "Explore" }));
    assert.deepEqual(effects, [{ type: "spawn", id: `${S}/a1` }]);
    const node = model.nodes.get(`${S}/a1`);
    assert.equal(node.family, "haiku");
    assert.equal(node.agentType, "Explore");
    assert.equal(model.stats.spawned, 1);
    assert.equal(model.nodes.size, 2);
  });

  test("a re-key of an agent that already finished brings back neither id", () => {
    const { model, send } = started();
    send(spawn(STAND_IN, { provisional: true }));
    send({ type: "agent_done", agent_id: STAND_IN, outcome: "success" });
    assert.deepEqual(send(rekey(STAND_IN, "a1")).effects, []);
    model.sweep(T0 + LEAVE_MS);
    assert.deepEqual(send({ type: "tool_use", agent_id: "a1", tool: "Read" }).effects, []);
    assert.deepEqual([...model.nodes.keys()], [`${S}/main`]);
  });

  test("when the real id was drawn apart first, the re-key folds it into the spawned node", () => {
    const { model, send } = started();
    send(spawn(STAND_IN, { provisional: true }), T0);
    const node = model.nodes.get(`${S}/${STAND_IN}`);
    send({ type: "tool_use", agent_id: STAND_IN, tool: "Read" });
    send({ type: "tool_use", agent_id: "a1", tool: "Grep", ts: T0 + 9 });
    assert.equal(model.nodes.size, 3);
    send(rekey(STAND_IN, "a1"));
    assert.equal(model.nodes.size, 2);
    assert.equal(model.nodes.get(`${S}/a1`), node);
    assert.equal(node.toolCount, 2);
    assert.equal(model.stats.spawned, 1);
  });

  test("a resync snapshot that skipped the re-key adopts the stand-in node by its tool_use_id", () => {
    const { model, send } = started(10);
    send(spawn(STAND_IN, { provisional: true }));
    const node = model.nodes.get(`${S}/${STAND_IN}`);
    const result = model.receive(snapshot(15, [record("main"), record("a1", { tool_use_id: STAND_IN, model: "opus" })]), T0);
    assert.deepEqual(result.effects, [{ type: "rekey", from: `${S}/${STAND_IN}`, to: `${S}/a1` }]);
    assert.equal(model.nodes.get(`${S}/a1`), node);
    assert.equal(node.family, "opus");
    assert.equal(model.nodes.size, 2);
  });

  test("a snapshot keeps the provisional mark of its records", () => {
    const model = new GraphModel();
    model.receive(snapshot(3, [record("main"), record(STAND_IN, { provisional: true, link: "confirmed" })]), T0);
    assert.equal(model.nodes.get(`${S}/${STAND_IN}`).provisional, true);
  });
});

group("agent_update fields", () => {
  test("the resolved model recolours the live node", () => {
    const { model, send } = started();
    send(spawn("a1", { model: null }));
    const node = model.nodes.get(`${S}/a1`);
    assert.equal(node.family, "other");
    const { rev, version } = model;
    send(update("a1", { model: "claude-opus-4-1" }));
    assert.equal(node.family, "opus");
    assert.equal(view(node).family, "opus");
    assert.ok(model.rev > rev);
    assert.equal(model.version, version, "a colour is not a new node");
  });

  test("waiting comes from agent_update, stays through other events, and a null clears it", () => {
    const { model, send } = started();
    send(spawn("a1"));
    const node = model.nodes.get(`${S}/a1`);
    send(update("a1", { waiting: "permission", waiting_tool: "Bash", waiting_since: T0 }));
    assert.equal(node.state, "waiting");
    assert.deepEqual(view(node), {
      id: `${S}/a1`,
      family: "sonnet",
      state: "waiting",
      waiting: "permission",
      waitText: "waiting for you: Bash",
      compacting: false,
      label: "general-purpose",
    });
    send({ type: "tool_done", agent_id: "a1", tool: "Bash" });
    send({ type: "tool_use", agent_id: "a1", tool: "Read" });
    send(update("a1", { description: "still at it" })); // absent means unchanged
    assert.equal(node.state, "waiting");
    send(update("a1", { waiting: null, waiting_tool: null, waiting_since: null, waited_ms: 4000 }));
    assert.equal(node.state, "alive");
    assert.equal(node.waitingTool, null);
    assert.equal(waitText(node), "");
    assert.equal(view(node).waiting, "");
    assert.equal(node.waitedMs, 4000);
  });

  test("waiting for input reads as such, on the ring and in the tooltip", () => {
    const { model, send } = started();
    send(update("main", { waiting: "input", waiting_since: T0 }));
    const node = model.nodes.get(`${S}/main`);
    assert.equal(waitText(node), "waiting for your input");
    assert.ok(describe(node, T0 + 3000).includes("waiting for your input"));
    assert.ok(describe(node, T0 + 3000).includes("waited for you: 3 s"));
  });

  test("a permission prompt without a tool still says waiting for you", () => {
    const { model, send } = started();
    send(update("main", { waiting: "permission" }));
    assert.equal(waitText(model.nodes.get(`${S}/main`)), "waiting for you");
  });

  test("the orchestrator shows compacting until it is told otherwise", () => {
    const { model, send } = started();
    const main = model.nodes.get(`${S}/main`);
    send(update("main", { compacting: true }));
    assert.equal(view(main).compacting, true);
    assert.ok(describe(main, T0).includes("compacting"));
    send({ type: "tool_use", tool: "Read" });
    assert.equal(view(main).compacting, true);
    send(update("main", { compacting: false }));
    assert.equal(view(main).compacting, false);
    assert.ok(!describe(main, T0).includes("compacting"));
  });

  test("an update for an unknown agent draws it, without counting a spawn", () => {
    const { model, send } = started();
    const { effects } = send(update("a9", { model: "haiku", link: "none" }));
    assert.deepEqual(effects, [{ type: "spawn", id: `${S}/a9` }]);
    assert.equal(model.nodes.get(`${S}/a9`).family, "haiku");
    assert.equal(model.stats.spawned, 0);
  });

  test("an update for a finished agent changes nothing", () => {
    const { model, send } = started();
    send(spawn("a1"));
    send({ type: "agent_done", agent_id: "a1", outcome: "success" });
    const { rev } = model;
    assert.deepEqual(send(update("a1", { waiting: "permission" })).effects, []);
    assert.equal(model.nodes.get(`${S}/a1`).state, "done");
    assert.equal(model.rev, rev);
  });
});

group("stop_fail", () => {
  test("flashes a failure labelled with the error and keeps the agent alive", () => {
    const { model, send } = started();
    send(spawn("a1"));
    const { effects } = send({ type: "stop_fail", agent_id: "a1", error: "rate_limit" });
    assert.deepEqual(effects, [{ type: "fail", id: `${S}/a1`, label: "rate_limit" }]);
    assert.equal(model.nodes.get(`${S}/a1`).state, "alive");
    assert.equal(model.stats.done, 0);
    assert.equal(model.alive, 2);
  });

  test("a stop failure on the orchestrator, with no error text, still reads as one", () => {
    const { send } = started();
    assert.deepEqual(send({ type: "stop_fail" }).effects, [{ type: "fail", id: `${S}/main`, label: "stop failed" }]);
  });
});

group("tooltip for the new fields", () => {
  test("waits, a running wait, link kinds and a provisional id", () => {
    const { model, send } = started();
    send(spawn("a1", { link: "inferred" }));
    send(spawn("a2", { link: "none" }));
    send(update("a1", { waiting: "permission", waiting_tool: "WebFetch", waiting_since: T0 + 1000, waited_ms: 60_000 }));
    const a1 = describe(model.nodes.get(`${S}/a1`), T0 + 6000);
    assert.ok(a1.includes("waiting for you: WebFetch permission"), a1);
    assert.ok(a1.includes("waited for you: 1 min 5 s"), a1);
    assert.ok(a1.includes("parent inferred"), a1);
    const a2 = describe(model.nodes.get(`${S}/a2`), T0);
    assert.ok(a2.includes("no spawn seen"), a2);
    assert.ok(!a2.some((l) => l.startsWith("waited")), a2);
    assert.ok(!a2.includes("id not known yet"), a2);
    send(update("a1", { waiting: null, waiting_since: null, waited_ms: 65_000 }));
    assert.ok(describe(model.nodes.get(`${S}/a1`), T0 + 999_999).includes("waited for you: 1 min 5 s"));
    assert.equal(waitedFor(model.nodes.get(`${S}/a1`), T0 + 999_999), 65_000);
  });

  test("labels: the agent type, or the orchestrator's project folder", () => {
    const { model, send } = started();
    send(spawn("a1", { agent_type: "Explore" }));
    send({ type: "session_start", project: "/home/me/acme/" });
    assert.equal(labelOf(model.nodes.get(`${S}/a1`)), "Explore");
    assert.equal(labelOf(model.nodes.get(`${S}/main`)), "acme");
  });
});

// ---- a page open from the start and a page opened at the end draw the same thing

const SHOWN = ["id", "agentId", "sessionId", "parentId", "agentType", "model", "family", "description", "project",
  "toolUseId", "background", "link", "provisional", "waiting", "waitingTool", "waitingSince", "waitedMs", "compacting",
  "toolCount", "state"];

/** A page that was open from seq 0: an empty snapshot, then every event. */
function pageFromStart(events, alive = []) {
  const model = new GraphModel();
  model.receive(snapshot(0, alive), T0);
  events.forEach((data, i) =>
    model.receive({ type: "event", seq: i + 1, epoch: EPOCH, data: { ts: T0 + i, session_id: S, agent_id: "main", ...data } }, T0 + i),
  );
  return model;
}

/** A page opened at the end: the snapshot of the alive records only. */
function pageFromSnapshot(alive) {
  const model = new GraphModel();
  model.receive(snapshot(100, alive), T0);
  return model;
}

function assertSamePage(live, late) {
  const ids = (m) => [...m.nodes.keys()].sort();
  assert.deepEqual(ids(late), ids(live), "same node ids");
  for (const [id, a] of live.nodes) {
    const b = late.nodes.get(id);
    assert.deepEqual(view(b), view(a), `${id}: what the page draws`);
    for (const field of SHOWN) assert.deepEqual(b[field], a[field], `${id}: ${field}`);
  }
  const links = (m) => m.links().map((l) => `${l.source.id} -> ${l.target.id}`).sort();
  assert.deepEqual(links(late), links(live), "same links");
}

// A session as ingest sees it: a provisional spawn re-keyed with the resolved model, a nested spawn under the stand-in,
// a permission prompt, an input wait that ended, an inferred link, a ghost, a stop failure and a compaction.
const SESSION_EVENTS = [
  { type: "session_start", model: "claude-opus-4-5", project: "/src/acme" },
  { type: "prompt" },
  { type: "tool_use", tool: "Agent" },
  spawn("toolu_A", { provisional: true, model: null, agent_type: "Explore", description: "map it" }),
  { type: "tool_use", agent_id: "toolu_A", tool: "Read" },
  spawn("toolu_B", { provisional: true, parent_id: "toolu_A", model: "haiku", agent_type: "reviewer" }),
  rekey("toolu_A", "a1", { model: "claude-haiku-4-5", agent_type: "Explore", description: "map it" }),
  { type: "tool_use", agent_id: "a1", tool: "Grep" },
  spawn("a3", { link: "inferred", model: "sonnet" }),
  update("a3", { waiting: "input", waiting_since: T0 + 10 }),
  update("a3", { waiting: null, waiting_since: null, waited_ms: 2500 }),
  { type: "tool_use", agent_id: "a4", tool: "Bash" },
  update("a4", { link: "none" }),
  { type: "tool_use", agent_id: "toolu_B", tool: "WebFetch" },
  { type: "notification", agent_id: "toolu_B", notification_type: "permission_prompt", message: "WebFetch" },
  update("toolu_B", { waiting: "permission", waiting_tool: "WebFetch", waiting_since: T0 + 15 }),
  { type: "stop_fail", agent_id: "a3", error: "overloaded" },
  update("main", { compacting: true }),
  spawn("gone", { model: "opus" }),
  { type: "agent_done", agent_id: "gone", outcome: "success" },
];

// What ingest's alive hash holds after SESSION_EVENTS: every field, as the contract says.
const SESSION_ALIVE = [
  record("main", { model: "claude-opus-4-5", project: "/src/acme", agent_type: "main", tool_count: 1, compacting: true,
    link: null, provisional: false, waiting: null, waiting_tool: null, waiting_since: null, waited_ms: 0 }),
  record("a1", { agent_type: "Explore", model: "claude-haiku-4-5", description: "map it", tool_use_id: "toolu_A",
    link: "confirmed", provisional: false, background: false, tool_count: 2, waiting: null, waiting_tool: null,
    waiting_since: null, waited_ms: 0 }),
  record("toolu_B", { parent_id: "a1", agent_type: "reviewer", model: "haiku", description: "run the tests",
    tool_use_id: "toolu_toolu_B", link: "confirmed", provisional: true, background: false, tool_count: 1,
    waiting: "permission", waiting_tool: "WebFetch", waiting_since: T0 + 15, waited_ms: 0 }),
  record("a3", { agent_type: "general-purpose", model: "sonnet", description: "run the tests", tool_use_id: "toolu_a3",
    link: "inferred", provisional: false, background: false, tool_count: 0, waiting: null, waiting_tool: null,
    waiting_since: null, waited_ms: 2500 }),
  record("a4", { parent_id: "main", agent_type: "agent", model: null, description: null, tool_use_id: null, link: "none",
    provisional: false, background: false, tool_count: 1, waiting: null, waiting_tool: null, waiting_since: null,
    waited_ms: 0 }),
];

group("a page opened late equals a page open from the start", () => {
  test("same nodes, colours, labels, waiting and compacting from the events as from the alive records", () => {
    const live = pageFromStart(SESSION_EVENTS);
    live.sweep(T0 + 10 * LEAVE_MS);
    const late = pageFromSnapshot(SESSION_ALIVE);
    assertSamePage(live, late);
    // Spot checks, so an empty pair of pages cannot pass.
    assert.equal(live.nodes.size, 5);
    assert.equal(live.nodes.get(`${S}/a1`).family, "haiku");
    assert.equal(view(live.nodes.get(`${S}/toolu_B`)).waitText, "waiting for you: WebFetch");
    assert.equal(view(live.nodes.get(`${S}/main`)).compacting, true);
    assert.equal(view(live.nodes.get(`${S}/main`)).label, "acme");
  });

  test("a page opened mid-way, on a snapshot with a provisional record, ends the same after the re-key", () => {
    const cut = 5; // after toolu_A's spawn and first call, before the re-key
    const mid = [
      record("main", { model: "claude-opus-4-5", project: "/src/acme", agent_type: "main", tool_count: 1 }),
      record("toolu_A", { agent_type: "Explore", model: null, description: "map it", tool_use_id: "toolu_toolu_A",
        provisional: true, link: "confirmed", tool_count: 1 }),
    ];
    const late = new GraphModel();
    late.receive(snapshot(cut, mid), T0);
    SESSION_EVENTS.slice(cut).forEach((data, i) =>
      late.receive(
        { type: "event", seq: cut + i + 1, epoch: EPOCH, data: { ts: T0 + cut + i, session_id: S, agent_id: "main", ...data } },
        T0 + cut + i,
      ),
    );
    const live = pageFromStart(SESSION_EVENTS);
    for (const m of [live, late]) m.sweep(T0 + 10 * LEAVE_MS);
    assertSamePage(live, late);
  });

  test("the comparison notices a difference in waiting, colour or id", () => {
    const live = pageFromStart(SESSION_EVENTS);
    live.sweep(T0 + 10 * LEAVE_MS);
    const unwait = SESSION_ALIVE.map((r) => (r.agent_id === "toolu_B" ? { ...r, waiting: null } : r));
    assert.throws(() => assertSamePage(live, pageFromSnapshot(unwait)), /toolu_B/);
    const recolour = SESSION_ALIVE.map((r) => (r.agent_id === "a1" ? { ...r, model: "sonnet" } : r));
    assert.throws(() => assertSamePage(live, pageFromSnapshot(recolour)), /a1/);
    const unkeyed = SESSION_ALIVE.map((r) => (r.agent_id === "a1" ? { ...r, agent_id: "toolu_A" } : r));
    assert.throws(() => assertSamePage(live, pageFromSnapshot(unkeyed)), /same node ids/);
  });

  test("an old-style page (today's ingest: no agent_update, no provisional) keeps what it knew", () => {
    const live = pageFromStart([spawn("a1", { model: "haiku" }), { type: "tool_use", agent_id: "a1", tool: "Read" }]);
    const node = live.nodes.get(`${S}/a1`);
    assert.equal(node.provisional, false);
    assert.equal(node.family, "haiku");
    assert.equal(node.waiting, null);
    const late = pageFromSnapshot([record("main", { agent_type: "main" }), record("a1", {
      agent_type: "general-purpose", model: "haiku", description: "run the tests", tool_use_id: "toolu_a1",
      background: false, tool_count: 1, model_family: undefined })]);
    const shown = (m) => [...m.nodes.values()].map(view);
    assert.deepEqual(shown(late), shown(live));
  });
});

group("a stand-in merged into another node", () => {
  test("agent_done with merged_into removes the stand-in without a flash and without counting a finish", () => {
    const { model, send } = started();
    send(spawn("toolu_x", { provisional: true }));
    send({ type: "agent_spawn", agent_id: "ghost", parent_id: "main", agent_type: "Explore", link: "none" });
    const spawned = model.stats.spawned;
    const { effects } = send({ type: "agent_done", agent_id: "toolu_x", outcome: "unknown", merged_into: "ghost" });
    assert.deepEqual(effects, []);
    assert.equal(model.nodes.has(`${S}/toolu_x`), false);
    assert.equal(model.nodes.has(`${S}/ghost`), true);
    assert.equal(model.stats.done, 0);
    assert.equal(model.stats.spawned, spawned - 1);
  });
});

group("rollback", () => {
  test("a ping behind the applied seq in the same epoch asks for a resync", () => {
    const { model, send } = started(10);
    send({ type: "tool_use", tool: "Read" });
    const result = model.receive({ type: "ping", seq: 5, epoch: EPOCH }, T0);
    assert.equal(result.resync, "rollback");
  });
});
