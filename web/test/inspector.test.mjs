// Issue 11: the counters snapshots carry, tool calls per agent, usage and subtree totals, the cost window,
// the activity feed and what the inspector and the session header say.
process.env.TZ = "UTC"; // clock() reads local time; pin it so HH:MM:SS is the same on every machine

import assert from "node:assert/strict";
import { describe as group, test } from "node:test";

import { FEED_SIZE, FeedModel, clock, describeEvent } from "../feedmodel.js";
import { aliveCost, ariaLabel, costLabel, formatDuration, inspect, sessionSummaries, statusText } from "../inspect.js";
import { CALLS_KEPT, ENDED_MEMORY, GraphModel } from "../model.js";
import { CostWindow, WINDOW_MS, addUsage, costNote, costText, formatTokens, formatUsd, readUsage } from "../usage.js";

const S = "sess-1";
const EPOCH = "e1";
const T0 = Date.UTC(2026, 7, 24, 14, 2, 11); // 14:02:11 UTC
const MIN = 60_000;

function record(agentId, extra = {}) {
  const main = agentId === "main";
  return {
    session_id: S,
    agent_id: agentId,
    parent_id: main ? null : "main",
    agent_type: main ? "main" : "Explore",
    model: main ? "claude-opus-4-5" : "haiku",
    description: main ? null : "map the module",
    spawned_at: T0,
    last_seen: T0,
    tool_count: 0,
    ...extra,
  };
}

function started(alive = [record("main")], seq = 10, clockNow = T0) {
  const model = new GraphModel(() => clockNow);
  model.receive({ type: "snapshot", seq, epoch: EPOCH, alive }, clockNow);
  let next = seq;
  const send = (data, now = T0) =>
    model.receive({ type: "event", seq: ++next, epoch: EPOCH, data: { ts: now, session_id: S, agent_id: "main", ...data } }, now);
  return { model, send, seq: () => next };
}

const spawn = (agentId, extra = {}) => ({
  type: "agent_spawn",
  agent_id: agentId,
  parent_id: "main",
  agent_type: "general-purpose",
  model: "claude-sonnet-4-5",
  description: "run the tests",
  tool_use_id: `toolu_${agentId}`,
  ...extra,
});
const use = (agentId, tool, id, extra = {}) => ({ type: "tool_use", agent_id: agentId, tool, tool_use_id: id, ...extra });
const usage = (cost, extra = {}) => ({
  input: 100,
  output: 20,
  cache_read: 1000,
  cache_write: 50,
  cost_usd: cost,
  messages: 2,
  unpriced: false,
  basis: "transcript",
  ...extra,
});
const node = (model, agentId, session = S) => model.lookup(`${session}/${agentId}`);

group("counters and calls", () => {
  test("node.tools counts calls by tool: from the snapshot, then from tool_use and skill_use", () => {
    const { model, send } = started([record("main"), record("a1", { tools: { Read: 3, Grep: 1 }, tool_count: 4 })]);
    const a1 = node(model, "a1");
    assert.ok(a1.tools instanceof Map);
    assert.deepEqual([...a1.tools], [["Read", 3], ["Grep", 1]]);
    send(use("a1", "Read", "t1"));
    send(use("a1", "Bash", "t2"));
    send({ type: "skill_use", agent_id: "a1", tool: "Skill", skill: "pdf", tool_use_id: "t3" });
    assert.deepEqual(Object.fromEntries(a1.tools), { Read: 4, Grep: 1, Bash: 1, Skill: 1 });
    assert.equal(a1.toolCount, 7);
    // An agent first seen through its calls starts from nothing.
    send(use("a2", "Read", "t4"));
    assert.deepEqual([...node(model, "a2").tools], [["Read", 1]]);
    assert.deepEqual([...node(model, "main").tools], []);
  });

  test("a record without the counters means none yet", () => {
    const { model } = started([record("main"), record("a1")]);
    assert.deepEqual([...node(model, "a1").tools], []);
    assert.equal(node(model, "main").prompts, 0);
    assert.equal(node(model, "main").agentsTotal, 0);
  });

  test("prompts and agents_total come with the orchestrator's record and count on from the events", () => {
    const { model, send } = started([record("main", { prompts: 2, agents_total: 5 })]);
    const main = node(model, "main");
    send({ type: "prompt", prompt_chars: 12 });
    assert.equal(main.prompts, 3);
    send(spawn("a1"));
    send(spawn("a2", { agent_id: "toolu_x", provisional: true }));
    assert.equal(main.agentsTotal, 7);
    // The stand-in was the same agent as a1 all along: counted once.
    send({ type: "agent_done", agent_id: "toolu_x", outcome: "success", merged_into: "a1" });
    assert.equal(main.agentsTotal, 6);
  });

  test("the last calls per agent: tool, summary, duration, failed or not; a call seen only ending is added", () => {
    const { model, send } = started([record("main"), record("a1")]);
    send(use("a1", "Bash", "t1", { detail: "npm test" }), T0);
    send({ type: "tool_fail", agent_id: "a1", tool: "Bash", tool_use_id: "t1", duration_ms: 1500, error: "Exit code 1" });
    send(use("a1", "Read", "t2", { detail: "src/a.ts" }));
    send({ type: "tool_done", agent_id: "a1", tool: "Read", tool_use_id: "t2", duration_ms: 40 });
    send(use("a1", "Grep", "t3"));
    send({ type: "tool_done", agent_id: "a1", tool: "Glob", tool_use_id: "before-we-looked", duration_ms: 7 }, T0 + 100);
    const calls = node(model, "a1").calls;
    assert.deepEqual(
      calls.map((c) => [c.tool, c.detail, c.durationMs, c.state, c.error]),
      [
        ["Bash", "npm test", 1500, "failed", "Exit code 1"],
        ["Read", "src/a.ts", 40, "done", null],
        ["Grep", null, null, "running", null],
        ["Glob", null, 7, "done", null],
      ],
    );
    assert.equal(calls[3].ts, T0 + 93);
  });

  test("only the last CALLS_KEPT calls are kept", () => {
    const { model, send } = started([record("main"), record("a1")]);
    for (let i = 0; i < CALLS_KEPT + 5; i++) send(use("a1", `T${i}`, `t${i}`));
    const calls = node(model, "a1").calls;
    assert.equal(calls.length, CALLS_KEPT);
    assert.equal(calls[0].tool, "T5");
    assert.equal(calls.at(-1).tool, `T${CALLS_KEPT + 4}`);
  });

  test("a re-key that folds a node drawn apart keeps both nodes' tool counts and calls", () => {
    const { model, send } = started();
    send(spawn("toolu_s", { agent_type: "Explore", provisional: true, tool_use_id: "toolu_s" }));
    send(use("toolu_s", "Read", "t1"));
    send(use("real", "Grep", "t2")); // its own calls came first and drew it apart
    send({ type: "agent_update", agent_id: "real", previous_id: "toolu_s", parent_id: "main", agent_type: "Explore" });
    const real = node(model, "real");
    assert.deepEqual(Object.fromEntries(real.tools), { Read: 1, Grep: 1 });
    assert.deepEqual(real.calls.map((c) => c.tool), ["Read", "Grep"]);
  });
});

group("usage and subtree totals", () => {
  test("readUsage keeps the figures, says floor and unpriced, and refuses what is not an object", () => {
    assert.deepEqual(readUsage(usage(0.5)), {
      input: 100, output: 20, cacheRead: 1000, cacheWrite: 50, messages: 2, costUsd: 0.5, unpriced: false, floor: false,
    });
    assert.equal(readUsage(usage(0.1, { basis: "floor" })).floor, true);
    assert.equal(readUsage(null), null);
    assert.equal(readUsage("x"), null);
    assert.equal(readUsage({ input: -3, cost_usd: "1" }).input, 0);
    assert.equal(readUsage({ cost_usd: "1" }).costUsd, null);
  });

  test("costs read as dollars, floors as ≥, unpriced never as $0", () => {
    assert.equal(costText(readUsage(usage(0.42))), "$0.42");
    assert.equal(costText(readUsage(usage(0.12, { basis: "floor" }))), "≥ $0.12");
    assert.equal(costText(readUsage(usage(null, { unpriced: true }))), "unpriced");
    assert.equal(costText(readUsage(usage(0.3, { unpriced: true }))), "≥ $0.30");
    assert.equal(costText(readUsage(usage(null))), "–");
    assert.equal(costText(null), "–");
    assert.equal(formatUsd(0), "$0");
    assert.equal(formatUsd(0.0042), "$0.004");
    assert.equal(formatUsd(0.0001), "<$0.001");
    assert.equal(formatUsd(12.3), "$12.30");
    assert.equal(formatUsd(1234.4), "$1234");
    assert.match(costNote(readUsage(usage(0.1, { basis: "floor" }))), /^floor/);
    assert.equal(costNote(readUsage(usage(0.1))), "");
  });

  test("tokens read short", () => {
    assert.deepEqual([950, 1234, 12_345, 999_999, 4_500_000].map(formatTokens), ["950", "1.2k", "12k", "1000k", "4.5M"]);
  });

  test("a sum is a floor if any part is, unpriced if any part is, and null only if both are", () => {
    const a = readUsage(usage(0.5));
    const b = readUsage(usage(null, { unpriced: true, basis: "floor" }));
    const sum = addUsage(a, b);
    assert.equal(sum.input, 200);
    assert.equal(sum.costUsd, 0.5);
    assert.ok(sum.floor && sum.unpriced);
    assert.equal(addUsage(null, null), null);
    assert.deepEqual(addUsage(a, null), a);
    assert.notEqual(addUsage(a, null), a); // a copy: sums never change a node's own object
  });

  test("subtree = usage + sub_usage + alive children's subtrees; a finished child's figures are its heir's", () => {
    const { model, send } = started([
      record("main", { usage: usage(1), sub_usage: usage(0.25) }),
      record("a1", { usage: usage(0.5) }),
      record("a2", { parent_id: "a1", usage: usage(0.125) }),
    ]);
    const totals = () => model.totals();
    assert.equal(totals().get(`${S}/a1`).subtree.costUsd, 0.625);
    assert.equal(totals().get(`${S}/main`).subtree.costUsd, 1.875);
    assert.equal(totals().get(`${S}/main`).own.costUsd, 1);
    assert.equal(totals().get(`${S}/main`).subtree.input, 400);
    // a2 ends with its final figures; ingest moves them into a1's sub_usage.
    send({ type: "agent_done", agent_id: "a2", outcome: "success", usage: usage(0.2) });
    assert.equal(totals().get(`${S}/a2`).subtree.costUsd, 0.2); // remembered, for the inspector
    assert.equal(totals().get(`${S}/a1`).subtree.costUsd, 0.5); // between the two events
    send({ type: "agent_update", agent_id: "a1", sub_usage: usage(0.2) });
    assert.equal(totals().get(`${S}/a1`).subtree.costUsd, 0.7);
    assert.equal(totals().get(`${S}/main`).subtree.costUsd, 1.95);
  });

  test("an alive agent whose parent ended counts under its orchestrator, where ingest moves it when it ends", () => {
    const { model, send } = started([
      record("main"),
      record("a1"),
      record("a2", { parent_id: "a1" }),
      record("a3", { parent_id: "a2", usage: usage(0.5) }),
    ]);
    assert.equal(model.totals().get(`${S}/a1`).subtree.costUsd, 0.5);
    send({ type: "agent_done", agent_id: "a2", outcome: "success" });
    assert.equal(model.totals().get(`${S}/a1`).subtree, null);
    assert.equal(model.totals().get(`${S}/main`).subtree.costUsd, 0.5);
    send({ type: "agent_done", agent_id: "a3", outcome: "success" });
    send({ type: "agent_update", agent_id: "main", sub_usage: usage(0.5) }); // as ingest publishes it
    assert.equal(model.totals().get(`${S}/main`).subtree.costUsd, 0.5);
  });

  test("an agent_done with only cost_usd (older ingest) counts as a floor", () => {
    const { model, send } = started([record("main"), record("a1")]);
    send({ type: "agent_done", agent_id: "a1", outcome: "success", cost_usd: 0.3 });
    assert.equal(costText(model.totals().get(`${S}/a1`).subtree), "≥ $0.30");
  });

  test("a parent loop in bad data ends instead of recursing forever", () => {
    const { model } = started([record("main"), record("a1", { parent_id: "a2", usage: usage(1) }), record("a2", { parent_id: "a1" })]);
    assert.ok(model.totals().get(`${S}/main`));
  });
});

group("cost in the last hour", () => {
  test("counts rises of a session's total, not dips, not what it had when we first saw it", () => {
    const w = new CostWindow(T0);
    w.observe("s", 5, T0, T0); // the snapshot's figure: spent before we looked
    w.observe("s", 5.5, T0 + 1000, T0 + 1000);
    w.observe("s", 5.2, T0 + 2000, T0 + 2000); // a child ended: its figures are on their way to its parent
    w.observe("s", 5.5, T0 + 3000, T0 + 3000); // and arrived: nothing new
    w.observe("s", 5.75, T0 + 4000, T0 + 4000);
    assert.deepEqual(w.total(T0 + 5000), { usd: 0.75, label: "last 1 min" });
    assert.equal(w.total(T0 + 23 * MIN).label, "last 23 min");
    assert.equal(w.total(T0 + WINDOW_MS - 1).usd, 0.75);
    assert.deepEqual(w.total(T0 + WINDOW_MS + 30_000), { usd: 0, label: "last hour" });
  });

  test("a session that starts while we watch counts from zero; unknown figures count nothing", () => {
    const w = new CostWindow(T0);
    w.start("new");
    w.observe("new", 0.25, T0, T0);
    w.observe("new", null, T0, T0);
    assert.equal(w.total(T0).usd, 0.25);
  });

  test("through the model: a snapshot is the start, later usage is spending, session_start starts at zero", () => {
    const { model, send } = started([record("main", { usage: usage(2) })]);
    assert.equal(model.costs.total(T0).usd, 0);
    send({ type: "agent_update", agent_id: "main", usage: usage(2.5) });
    send(spawn("a1", { usage: usage(0.25) }));
    assert.equal(model.costs.total(T0).usd, 0.75);
    send({ type: "session_start", session_id: "s2", model: "opus", project: "/p/b", usage: usage(0.5) });
    assert.equal(model.costs.total(T0).usd, 1.25);
    assert.equal(aliveCost(model).text, "$3.25");
  });
});

group("finished agents stay inspectable", () => {
  test("agent_done keeps the last state: outcome, final usage, duration, waits; lookup finds it after the sweep", () => {
    const { model, send } = started([record("main"), record("a1", { waiting: "permission", waiting_tool: "Bash", waiting_since: T0, waited_ms: 1000 })]);
    send({ type: "agent_done", agent_id: "a1", outcome: "failure", duration_ms: 65_000, waited_ms: 4000, usage: usage(0.4) }, T0 + 65_000);
    model.sweep(T0 + 65_000 + 5000);
    assert.ok(!model.nodes.has(`${S}/a1`));
    const a1 = node(model, "a1");
    assert.equal(a1.state, "done");
    assert.equal(a1.outcome, "failure");
    const view = inspect(model, a1, T0 + 10 * MIN);
    assert.equal(view.statusText, "done ✕ failure");
    assert.equal(view.duration, "1 min 5 s");
    assert.equal(view.waited, "4 s");
    assert.equal(view.waitingNow, false);
    assert.equal(view.live, false);
    assert.equal(view.usage.at(-1).own, "$0.40");
  });

  test("a wait running at the end is added when agent_done does not say", () => {
    const { model, send } = started([record("main"), record("a1", { waiting: "permission", waiting_since: T0, waited_ms: 1000 })]);
    send({ type: "agent_done", agent_id: "a1", outcome: "success" }, T0 + 3000);
    assert.equal(node(model, "a1").waitedMs, 4000);
  });

  test("only the last ENDED_MEMORY finished agents are remembered; a reset forgets them all", () => {
    const { model, send } = started();
    for (let i = 0; i <= ENDED_MEMORY; i++) {
      send(spawn(`a${i}`));
      send({ type: "agent_done", agent_id: `a${i}`, outcome: "success" });
    }
    model.sweep(T0 + 10_000);
    assert.equal(model.ended.size, ENDED_MEMORY);
    assert.equal(node(model, "a0"), null);
    assert.ok(node(model, `a${ENDED_MEMORY}`));
    model.receive({ type: "snapshot", seq: 1, epoch: "e2", alive: [record("main")] }, T0);
    assert.equal(model.ended.size, 0);
  });
});

group("inspector", () => {
  test("says what it was asked, type, model, status, times, tools by count, calls newest first", () => {
    const { model, send } = started([record("main")]);
    send(spawn("a1", { asked: "Run the checkout test suite", model: "claude-sonnet-4-5" }), T0);
    send(use("a1", "Read", "t1", { detail: "src/a.ts" }), T0 + 1000);
    send({ type: "tool_done", agent_id: "a1", tool: "Read", tool_use_id: "t1", duration_ms: 1200 }, T0 + 2200);
    send(use("a1", "Bash", "t2", { detail: "npm test" }), T0 + 3000);
    send(use("a1", "Read", "t3"), T0 + 4000);
    send({ type: "agent_update", agent_id: "a1", waiting: "permission", waiting_tool: "Bash", waiting_since: T0 + 5000 }, T0 + 5000);
    const view = inspect(model, node(model, "a1"), T0 + 65_000);
    assert.equal(view.type, "general-purpose");
    assert.equal(view.description, "run the tests");
    assert.equal(view.asked, "Run the checkout test suite");
    assert.equal(view.model, "claude-sonnet-4-5");
    assert.equal(view.status, "waiting");
    assert.equal(view.statusText, "waiting for permission: Bash");
    assert.equal(view.started, "14:02:11");
    assert.equal(view.duration, "1 min 5 s");
    assert.equal(view.ticking, true);
    assert.equal(view.waited, "1 min 0 s");
    assert.deepEqual(view.tools, [["Read", 2], ["Bash", 1]]);
    assert.deepEqual(view.calls.map((c) => [c.tool, c.summary, c.duration, c.state]), [
      ["Read", "", "running", "running"],
      ["Bash", "npm test", "running", "running"],
      ["Read", "src/a.ts", "1.2 s", "done"],
    ]);
    assert.equal(view.parent.id, `${S}/main`);
    assert.equal(view.parent.label, "main");
  });

  test("the orchestrator's children link to each agent under it, finished ones too; its subtree is the session", () => {
    const { model, send } = started([record("main", { usage: usage(1), prompts: 1, agents_total: 2 })]);
    send(spawn("a1", { usage: usage(0.5) }));
    send(spawn("a2", { agent_type: "Explore", model: "haiku", usage: usage(0.25) }));
    send(spawn("a3", { parent_id: "a1", agent_type: "Plan" }));
    send({ type: "agent_done", agent_id: "a2", outcome: "success", usage: usage(0.25) });
    send({ type: "agent_update", agent_id: "main", sub_usage: usage(0.25) });
    const main = inspect(model, node(model, "main"), T0);
    assert.equal(main.type, "orchestrator");
    assert.equal(main.prompts, 1);
    assert.equal(main.agentsTotal, 5);
    assert.deepEqual(main.children.map((c) => [c.id, c.label, c.statusText, c.cost]), [
      [`${S}/a1`, "general-purpose", "alive", "$0.50"],
      [`${S}/a2`, "Explore", "done ✓ success", "$0.25"],
    ]);
    assert.deepEqual(main.usage.at(-1), { label: "cost", own: "$1.00", subtree: "$1.75" });
    assert.deepEqual(main.usage[0], { label: "input", own: "100", subtree: "300" });
    assert.equal(main.parent, null);
    const a1 = inspect(model, node(model, "a1"), T0);
    assert.deepEqual(a1.children.map((c) => c.id), [`${S}/a3`]);
    const a3 = inspect(model, node(model, "a3"), T0);
    assert.equal(a3.parent.id, `${S}/a1`);
  });

  test("a floor says so", () => {
    const { model } = started([record("main"), record("a1", { usage: usage(0.12, { basis: "floor" }) })]);
    const view = inspect(model, node(model, "a1"), T0);
    assert.equal(view.usage.at(-1).own, "≥ $0.12");
    assert.match(view.costNote, /floor/);
  });

  test("status words, durations and accessible names", () => {
    const { model, send } = started([record("main", { project: "/home/dev/acme-shop" }), record("a1")]);
    assert.equal(statusText(node(model, "a1")), "alive");
    send({ type: "agent_update", agent_id: "main", compacting: true });
    assert.equal(statusText(node(model, "main")), "compacting");
    send({ type: "agent_update", agent_id: "main", compacting: false, waiting: "input" });
    assert.equal(statusText(node(model, "main")), "waiting for your input");
    assert.equal(ariaLabel(node(model, "main")), "orchestrator acme-shop, waiting for your input");
    assert.equal(ariaLabel(node(model, "a1")), "Explore agent, map the module, alive");
    assert.deepEqual([340, 1234, 125_000, null].map(formatDuration), ["340 ms", "1.2 s", "2 min 5 s", ""]);
  });

  test("a node a snapshot dropped without agent_done is shown as gone, not as alive", () => {
    const { model } = started([record("main"), record("a1")]);
    const a1 = node(model, "a1");
    model.receive({ type: "snapshot", seq: 20, epoch: EPOCH, alive: [record("main")] }, T0);
    const view = inspect(model, a1, T0);
    assert.equal(view.gone, true);
    assert.equal(view.live, false);
  });
});

group("session header and cost labels", () => {
  test("per session: project, prompts, alive and total agents, cost", () => {
    const { model, send } = started([record("main", { project: "/home/dev/acme-shop", prompts: 2, agents_total: 3, usage: usage(1) })]);
    send(spawn("a1", { usage: usage(0.5) }));
    send({ type: "session_start", session_id: "s2", project: "/home/dev/billing", model: "opus" });
    assert.deepEqual(
      sessionSummaries(model).map((s) => [s.name, s.prompts, s.alive, s.total, s.cost]),
      [
        ["acme-shop", 2, 1, 4, "$1.50"],
        ["billing", 0, 0, 0, "–"],
      ],
    );
  });

  test("a cost label says own or subtree (Σ), and nothing when no cost is known", () => {
    const { model } = started([record("main", { usage: usage(1) }), record("a1", { usage: usage(0.5) }), record("a2")]);
    assert.equal(costLabel(model, node(model, "main"), "own"), "$1.00");
    assert.equal(costLabel(model, node(model, "main"), "subtree"), "Σ $1.50");
    assert.equal(costLabel(model, node(model, "a2"), "subtree"), "");
  });
});

group("activity feed", () => {
  test("events in words", () => {
    const say = (data, before) => describeEvent(data, before)?.text ?? null;
    assert.equal(say({ type: "agent_spawn", agent_type: "Explore", description: "Map checkout module" }), "spawned: Map checkout module");
    assert.equal(say({ type: "tool_fail", tool: "Bash", error: "Exit code 1" }), "Bash ✕ failed: Exit code 1");
    assert.equal(say({ type: "tool_use", tool: "Bash", detail: "npm test" }), "Bash: npm test");
    assert.equal(say({ type: "tool_use", tool: "Read" }), "Read");
    assert.equal(say({ type: "agent_update", waiting: "permission", waiting_tool: "Bash" }), "waiting for permission: Bash");
    assert.equal(say({ type: "agent_update", waiting: "permission", waiting_tool: "Bash" }, "permission"), null);
    assert.equal(say({ type: "agent_update", waiting: "input" }), "waiting for your input");
    assert.equal(say({ type: "agent_update", waiting: null }, "permission"), null);
    assert.equal(say({ type: "agent_update", model: "opus" }), null);
    assert.equal(say({ type: "agent_done", outcome: "success", usage: usage(0.42) }), "done ✓ success $0.42");
    assert.equal(say({ type: "agent_done", outcome: "failure", cost_usd: 0.1 }), "done ✕ failure ≥ $0.10");
    assert.equal(say({ type: "agent_done", outcome: "lost" }), "done ⌀ lost");
    assert.equal(say({ type: "agent_done", outcome: "success", merged_into: "x" }), null);
    assert.equal(say({ type: "prompt", prompt_chars: 42 }), "prompt (42 chars)");
    assert.equal(say({ type: "prompt", prompt: "fix it\nplease" }), "prompt: fix it");
    assert.equal(say({ type: "tool_done", tool: "Read" }), null);
    assert.equal(say({ type: "permission_request", tool: "Bash" }), null);
    assert.equal(say({ type: "notification", notification_type: "permission_prompt" }), null);
    assert.equal(say({ type: "session_end", reason: "logout" }), "session ended (logout)");
    assert.equal(say({ type: "stop_fail", error: "rate_limit" }), "✕ stopped: rate_limit");
    assert.equal(clock(T0), "14:02:11");
  });

  function feedOf(events) {
    const { model, send, seq } = started([record("main", { project: "/p/acme-shop" })]);
    const feed = new FeedModel();
    const push = (data, now = T0) => {
      send(data, now);
      const d = { ts: now, session_id: S, agent_id: "main", ...data };
      feed.push(seq(), d, model.lookup(`${d.session_id}/${d.agent_id}`));
    };
    for (const e of events) push(e);
    return { model, feed, push };
  }

  test("lines name the agent as the graph does, newest first, in stream order", () => {
    const { feed } = feedOf([
      spawn("a1", { agent_type: "Explore", model: "haiku", description: "Map" }),
      use("a1", "Grep", "t1"),
      { type: "tool_done", agent_id: "a1", tool: "Grep", tool_use_id: "t1" },
      { type: "agent_done", agent_id: "a1", outcome: "success" },
    ]);
    assert.deepEqual(
      feed.view().map((l) => [l.time, l.name, l.family, l.text]),
      [
        ["14:02:11", "Explore", "haiku", "done ✓ success"],
        ["14:02:11", "Explore", "haiku", "Grep"],
        ["14:02:11", "Explore", "haiku", "spawned: Map"],
      ],
    );
    assert.deepEqual(feed.view().map((l) => l.seq), [14, 12, 11]);
  });

  test("a wait makes one line, even when a re-key repeats it", () => {
    const { feed } = feedOf([
      spawn("toolu_s", { provisional: true }),
      { type: "agent_update", agent_id: "toolu_s", waiting: "permission", waiting_tool: "Bash" },
      { type: "agent_update", agent_id: "real", previous_id: "toolu_s", waiting: "permission", waiting_tool: "Bash" },
    ]);
    assert.equal(feed.view().filter((l) => l.tone === "wait").length, 1);
  });

  test("keeps the last FEED_SIZE lines", () => {
    const { feed, push } = feedOf([]);
    for (let i = 0; i < FEED_SIZE + 10; i++) push(use("main", `T${i}`, `t${i}`));
    assert.equal(feed.lines.length, FEED_SIZE);
    assert.equal(feed.view()[0].text, `T${FEED_SIZE + 9}`);
    assert.equal(feed.view().at(-1).text, "T10");
  });

  test("filters by session and by agent; lists the sessions and agents it has lines of", () => {
    const { feed, push } = feedOf([spawn("a1", { agent_type: "Explore" }), use("a1", "Read", "t1"), use("main", "Glob", "t2")]);
    push({ type: "session_start", session_id: "s2", project: "/p/billing", model: "opus" });
    push({ type: "tool_use", session_id: "s2", tool: "Bash", tool_use_id: "t3" });
    assert.equal(feed.view().length, 5);
    assert.deepEqual(feed.sessions(), [{ id: S, name: "acme-shop" }, { id: "s2", name: "billing" }]);
    feed.setFilter({ session: "s2" });
    assert.deepEqual(feed.view().map((l) => l.text), ["Bash", "session started"]);
    feed.setFilter({ agent: `${S}/a1` });
    assert.equal(feed.filter.session, S);
    assert.deepEqual(feed.view().map((l) => l.text), ["Read", "spawned: run the tests"]);
    assert.deepEqual(feed.agents(S).map((a) => a.name), ["acme-shop", "Explore"]);
    feed.setFilter({});
    assert.equal(feed.view().length, 5);
  });

  test("paused: the view holds still and counts what it holds back (the filter's only); resume shows all", () => {
    const { feed, push } = feedOf([use("main", "Read", "t1")]);
    feed.setFilter({ session: S });
    feed.pause();
    push(use("main", "Grep", "t2"));
    push({ type: "tool_use", session_id: "other", tool: "Bash", tool_use_id: "t3" });
    push(use("main", "Glob", "t4"));
    assert.deepEqual(feed.view().map((l) => l.text), ["Read"]);
    assert.equal(feed.unseen, 2);
    feed.resume();
    assert.deepEqual(feed.view().map((l) => l.text), ["Glob", "Grep", "Read"]);
    assert.equal(feed.unseen, 0);
  });

  test("a filter chosen while paused applies at once", () => {
    const { feed, push } = feedOf([use("main", "Read", "t1")]);
    feed.pause();
    push(use("main", "Grep", "t2"));
    feed.setFilter({ agent: `${S}/main` });
    assert.deepEqual(feed.view().map((l) => l.text), ["Grep", "Read"]);
    assert.equal(feed.unseen, 0);
    assert.ok(feed.paused);
  });
});

group("activity feed and re-keys", () => {
  test("a stand-in's lines follow its re-key, and so does a filter on it", () => {
    const { model, send, seq } = started([record("main")]);
    const feed = new FeedModel();
    const push = (data) => {
      send(data);
      const d = { ts: T0, session_id: S, agent_id: "main", ...data };
      feed.push(seq(), d, model.lookup(`${S}/${d.agent_id}`));
    };
    push(spawn("toolu_s", { provisional: true, agent_type: "Explore" }));
    feed.setFilter({ agent: `${S}/toolu_s` });
    push({ type: "agent_update", agent_id: "real", previous_id: "toolu_s", agent_type: "Explore" });
    push(use("real", "Read", "t1"));
    assert.equal(feed.filter.agent, `${S}/real`);
    assert.deepEqual(feed.view().map((l) => [l.id, l.text]), [
      [`${S}/real`, "Read"],
      [`${S}/real`, "spawned: run the tests"],
    ]);
  });
});

group("activity feed across a replay seek", () => {
  test("a snapshot back in time drops the lines of later seqs; a new epoch drops them all", () => {
    const feed = new FeedModel();
    const line = (seq, tool) => feed.push(seq, { type: "tool_use", ts: T0 + seq, session_id: S, agent_id: "main", tool }, null);
    line(3, "Read");
    line(7, "Grep");
    line(9, "Bash");
    assert.equal(feed.rewind(7), true);
    assert.deepEqual(feed.view().map((l) => l.seq), [7, 3]);
    assert.equal(feed.rewind(8), false); // nothing after 8: nothing changes
    line(8, "Edit");
    assert.equal(feed.rewind(100, false), true);
    assert.deepEqual(feed.view(), []);
  });
});
