// What the inspector panel and the session header say, as plain data and strings. Pure, like model.js;
// inspector.js and header.js put it on the page.
import { MAIN, nodeId } from "./ids.js";
import { truncate } from "./model.js";
import { formatAge, labelOf, waitedFor } from "./present.js";
import { OUTCOME_MARKS, clock } from "./feedmodel.js";
import { addUsage, aliveChildren, costNote, costText, formatTokens, heirOf } from "./usage.js";

const TOKEN_ROWS = [
  ["input", "input"],
  ["output", "output"],
  ["cache read", "cacheRead"],
  ["cache write", "cacheWrite"],
];

/** alive, waiting, compacting or done: what the agent is doing now, in one word. */
export function statusOf(node) {
  if (node.state === "done") return "done";
  if (node.waiting) return "waiting";
  if (node.compacting) return "compacting";
  return "alive";
}

/** The status in words: "waiting for permission: Bash", "done ✓ success", "alive". */
export function statusText(node) {
  const status = statusOf(node);
  if (status === "done") return `done ${OUTCOME_MARKS[node.outcome] ?? "?"} ${node.outcome}`;
  if (status === "waiting") {
    if (node.waiting === "input") return "waiting for your input";
    return `waiting for permission${node.waitingTool ? `: ${node.waitingTool}` : ""}`;
  }
  return status;
}

/** "1.2 s", "340 ms", "2 min 5 s" */
export function formatDuration(ms) {
  if (ms == null) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return formatAge(ms);
}

const ref = (node) => ({ id: node.id, label: labelOf(node), status: statusOf(node), statusText: statusText(node) });

/**
 * The agents under a node: alive ones whose figures belong under it (see heirOf), then finished ones
 * remembered with it as parent; oldest first.
 */
export function childrenOf(model, node) {
  const out = [...(aliveChildren(model).get(node.id) ?? [])];
  const seen = new Set(out);
  for (const other of [...model.nodes.values(), ...model.ended.values()]) {
    if (seen.has(other) || other.state !== "done" || other === node) continue;
    if (other.sessionId === node.sessionId && other.parentId === node.agentId) {
      seen.add(other);
      out.push(other);
    }
  }
  return out.sort((a, b) => a.spawnedAt - b.spawnedAt);
}

/** The parent to link to: the recorded parent if still known, else where the agent hangs (its heir). */
export function parentOf(model, node) {
  if (node.agentId === MAIN) return null;
  return model.lookup(nodeId(node.sessionId, node.parentId ?? MAIN)) ?? heirOf(model, node);
}

function usageRows(own, subtree) {
  const rows = TOKEN_ROWS.map(([label, key]) => ({
    label,
    own: own ? formatTokens(own[key]) : "–",
    subtree: subtree ? formatTokens(subtree[key]) : "–",
  }));
  rows.push({ label: "cost", own: costText(own), subtree: costText(subtree) });
  return rows;
}

/**
 * Everything the inspector shows of `node` at `now`, as strings and small records. `live` is false for a
 * node the stream no longer has (it finished, or a snapshot dropped it): the panel shows its last state.
 */
export function inspect(model, node, now) {
  const main = node.agentId === MAIN;
  const done = node.state === "done";
  const ended = node.endedAt ?? now;
  const totals = model.totals().get(node.id) ?? { own: null, sub: null, subtree: null };
  const tools = [...node.tools].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return {
    id: node.id,
    agentId: node.agentId,
    sessionId: node.sessionId,
    live: model.nodes.get(node.id) === node && !done,
    // Dropped by a snapshot without an agent_done (a resync): its last state, with no outcome.
    gone: !done && model.nodes.get(node.id) !== node,
    title: labelOf(node),
    type: main ? "orchestrator" : node.agentType,
    family: node.family,
    description: node.description,
    asked: node.asked,
    project: node.project,
    model: node.model ?? "unknown",
    status: statusOf(node),
    statusText: statusText(node),
    outcome: done ? node.outcome : null,
    started: clock(node.spawnedAt),
    duration: formatAge(done && node.durationMs != null ? node.durationMs : Math.max(0, ended - node.spawnedAt)),
    ticking: !done,
    waited: node.waitedMs > 0 || node.waiting ? formatAge(waitedFor(node, now)) : null,
    waitingNow: !done && Boolean(node.waiting),
    toolCount: node.toolCount,
    tools,
    calls: [...node.calls].reverse().map((c) => ({
      tool: c.skill ? `${c.tool} ${c.skill}` : c.tool,
      summary: c.detail ?? "",
      duration: c.state === "running" ? "running" : formatDuration(c.durationMs),
      state: c.state,
      error: c.error,
      time: clock(c.ts),
    })),
    usage: usageRows(totals.own, totals.subtree),
    costNote: costNote(totals.subtree),
    parent: (() => {
      const parent = parentOf(model, node);
      return parent ? ref(parent) : null;
    })(),
    children: childrenOf(model, node).map((child) => ({
      ...ref(child),
      cost: costText(model.totals().get(child.id)?.subtree ?? null),
    })),
    prompts: main ? node.prompts : null,
    agentsTotal: main ? node.agentsTotal : null,
    provisional: node.provisional,
    link: node.link,
  };
}

/**
 * One line per session, in order of first appearance: its project, prompts, alive and total sub-agents,
 * and its cost (the orchestrator's subtree total).
 */
export function sessionSummaries(model) {
  const totals = model.totals();
  const alive = new Map();
  for (const node of model.nodes.values()) {
    if (node.agentId !== MAIN && node.state !== "done") alive.set(node.sessionId, (alive.get(node.sessionId) ?? 0) + 1);
  }
  const out = [];
  for (const sessionId of model.sessions()) {
    const main = model.nodes.get(nodeId(sessionId, MAIN));
    if (!main) continue;
    const running = alive.get(sessionId) ?? 0;
    out.push({
      sessionId,
      id: main.id,
      name: labelOf(main),
      project: main.project,
      prompts: main.prompts,
      alive: running,
      total: Math.max(main.agentsTotal, running),
      cost: costText(totals.get(main.id)?.subtree ?? null),
      ended: main.state === "done",
    });
  }
  return out;
}

/** The cost of everything alive (the sum of alive sessions' subtree totals), as text, and its usage. */
export function aliveCost(model) {
  const totals = model.totals();
  let sum = null;
  for (const node of model.nodes.values()) {
    if (node.agentId === MAIN && node.state !== "done") sum = addUsage(sum, totals.get(node.id)?.subtree ?? null);
  }
  return { text: costText(sum), usage: sum };
}

/** What a node's cost label under it says: its own cost or its subtree's ("Σ"); "" when nothing is known. */
export function costLabel(model, node, mode) {
  const t = model.totals().get(node.id);
  const usage = mode === "own" ? t?.own : t?.subtree;
  const text = costText(usage ?? null);
  if (text === "–") return "";
  return mode === "own" ? text : `Σ ${text}`;
}

/** The accessible name of a node: what it is and what it is doing. */
export function ariaLabel(node) {
  const who = node.agentId === MAIN ? `orchestrator ${labelOf(node)}` : `${node.agentType} agent`;
  const what = node.description ? `, ${truncate(node.description, 60)}` : "";
  return `${who}${what}, ${statusText(node)}`;
}
