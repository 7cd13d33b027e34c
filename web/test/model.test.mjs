import assert from "node:assert/strict";
import { describe as group, test } from "node:test";

import {
  BACKOFF_MAX_MS,
  GraphModel,
  LEAVE_MS,
  MIN_SESSION_GAP,
  backoffDelay,
  describe,
  formatAge,
  modelFamily,
  sessionAnchors,
  streamUrl,
} from "../model.js";

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

  test("a permission prompt shows 'waiting' until the agent's next event", () => {
    const { model, send } = started();
    send(spawn("a1"));
    send({ type: "notification", agent_id: "a1", notification_type: "permission_prompt", message: "needs Bash" });
    assert.equal(model.nodes.get(`${S}/a1`).state, "waiting");
    send({ type: "tool_use", agent_id: "main", tool: "Read" }); // another agent: still waiting
    assert.equal(model.nodes.get(`${S}/a1`).state, "waiting");
    send({ type: "tool_done", agent_id: "a1", tool: "Bash" });
    assert.equal(model.nodes.get(`${S}/a1`).state, "alive");
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
