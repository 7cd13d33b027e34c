// One node of the page's model: its fields, how records and events fill them, and its recent calls. Pure.
import { MAIN, nodeId } from "./ids.js";
import { readUsage } from "./usage.js";

// Tool calls kept per agent for the inspector, newest last.
export const CALLS_KEPT = 20;

export const text = (v) => (v == null || v === "" ? null : String(v));
export const ms = (v) => (Number.isFinite(v) ? v : null);
// How each field of an alive record, agent_spawn, session_start or agent_update lands on a node. A field
// present with null means "now null"; an absent field keeps what we knew. Alive records and events go
// through this one table, so a page opened late draws what a page open from the start draws.
const FIELDS = {
  agent_type: (n, v) => (n.agentType = text(v) ?? (n.agentId === MAIN ? "main" : "agent")),
  parent_id: (n, v) => {
    if (n.agentId !== MAIN) n.parentId = text(v) !== null && String(v) !== n.agentId ? String(v) : MAIN;
  },
  model: (n, v) => (n.model = text(v)),
  description: (n, v) => (n.description = text(v)),
  project: (n, v) => (n.project = text(v)),
  tool_use_id: (n, v) => (n.toolUseId = text(v)),
  background: (n, v) => (n.background = Boolean(v)),
  link: (n, v) => (n.link = text(v)),
  provisional: (n, v) => (n.provisional = Boolean(v)),
  waiting: (n, v) => (n.waiting = text(v)),
  waiting_tool: (n, v) => (n.waitingTool = text(v)),
  waiting_since: (n, v) => (n.waitingSince = ms(v)),
  waited_ms: (n, v) => (n.waitedMs = ms(v) ?? 0),
  compacting: (n, v) => (n.compacting = Boolean(v)),
  asked: (n, v) => (n.asked = text(v)),
  usage: (n, v) => (n.usage = readUsage(v)),
  sub_usage: (n, v) => (n.subUsage = readUsage(v)),
  // Never cleared: a cost or a spawn time once known stays known.
  cost_usd: (n, v) => Number.isFinite(v) && (n.costUsd = v),
  spawned_at: (n, v) => Number.isFinite(v) && (n.spawnedAt = v),
};

/** "claude-sonnet-4-5" and "Sonnet" are both sonnet; anything unrecognised is "other". */
export function modelFamily(model) {
  const name = String(model ?? "").toLowerCase();
  for (const family of ["opus", "sonnet", "haiku"]) if (name.includes(family)) return family;
  return "other";
}

export function newNode(sessionId, agentId, ts) {
  const main = agentId === MAIN;
  return {
    id: nodeId(sessionId, agentId),
    sessionId,
    agentId,
    parentId: main ? null : MAIN,
    agentType: main ? "main" : "agent",
    model: null,
    family: main ? "main" : "other",
    description: null,
    project: null,
    background: false,
    toolUseId: null,
    link: null,
    provisional: false,
    waiting: null, // null, "permission" or "input"
    waitingTool: null,
    waitingSince: null,
    waitedMs: 0, // finished waits only; the running one is counted from waitingSince
    compacting: false,
    spawnedAt: ts,
    lastSeen: ts,
    toolCount: 0,
    // Calls by tool name (tool -> count). The graph's tool satellites read this: keep its name and shape.
    tools: new Map(),
    calls: [], // the last CALLS_KEPT calls seen: {toolUseId, tool, skill, detail, ts, durationMs, state, error}
    asked: null, // the first line of what it was asked (ingest --publish-details only)
    usage: null, // its own tokens and cost (see readUsage)
    subUsage: null, // its ended descendants'
    prompts: 0, // the orchestrator's
    agentsTotal: 0, // the orchestrator's: sub-agents spawned in its session
    costUsd: null,
    state: "alive",
    outcome: null,
    goneAt: null,
    endedAt: null,
    durationMs: null,
  };
}

// Copy the fields an alive record or an event carries (see FIELDS); absent fields keep what we knew.
export function fill(node, src) {
  for (const key in FIELDS) if (src[key] !== undefined) FIELDS[key](node, src[key]);
  if (node.agentId !== MAIN) node.family = modelFamily(node.model);
  if (node.state !== "done") node.state = node.waiting ? "waiting" : "alive";
}


export const count = (v) => (Number.isFinite(v) && v > 0 ? Math.floor(v) : 0);

export function toolMap(tools) {
  const map = new Map();
  for (const [tool, n] of Object.entries(tools)) if (count(n) > 0) map.set(tool, count(n));
  return map;
}

export function startCall(node, data, ts) {
  node.calls.push({
    toolUseId: text(data.tool_use_id),
    tool: String(data.tool || "tool"),
    skill: data.type === "skill_use" ? text(data.skill) : null,
    detail: text(data.detail), // with ingest --publish-details only
    ts,
    durationMs: null,
    state: "running", // then "done" or "failed"
    error: null,
  });
  if (node.calls.length > CALLS_KEPT) node.calls.shift();
}

// A call that started before the page looked is added when it ends.
export function endCall(node, data, ts, failed) {
  const id = text(data.tool_use_id);
  let call = id === null ? null : node.calls.findLast((c) => c.toolUseId === id);
  if (!call) {
    startCall(node, { ...data, type: "tool_use" }, ts - (ms(data.duration_ms) ?? 0));
    call = node.calls.at(-1);
  }
  call.durationMs = ms(data.duration_ms) ?? Math.max(0, ts - call.ts);
  call.state = failed ? "failed" : "done";
  call.error = failed ? text(data.error) : null;
}

export function truncate(text, max) {
  const s = String(text ?? "");
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
