// Tokens and cost: the usage objects ingest publishes, their sums over a subtree, how they read, and the cost
// seen to happen while the page was open. Pure, like model.js: no DOM, no d3.
import { MAIN, nodeId } from "./ids.js";

export const WINDOW_MS = 60 * 60 * 1000; // "the last hour"
const BUCKET_MS = 10_000; // the window counts cost in 10 s buckets: 360 numbers, however busy the hour
const MAX_DEPTH = 200; // a tree deeper than this is a loop in bad data, not a real tree

/**
 * A published usage object ({input, output, cache_read, cache_write, cost_usd, messages, unpriced, basis})
 * as the page holds it; null for null or anything that is not an object. `floor` means the cost is a lower
 * bound: only the Agent tool's final request was known.
 */
export function readUsage(v) {
  if (!v || typeof v !== "object") return null;
  const n = (x) => (Number.isFinite(x) && x > 0 ? x : 0);
  return {
    input: n(v.input),
    output: n(v.output),
    cacheRead: n(v.cache_read),
    cacheWrite: n(v.cache_write),
    messages: n(v.messages),
    costUsd: Number.isFinite(v.cost_usd) ? v.cost_usd : null,
    unpriced: v.unpriced === true,
    floor: v.basis === "floor",
  };
}

/** a + b, either may be null. A sum is a floor if any part is, and partly unpriced if any part is. */
export function addUsage(a, b) {
  if (!a) return b ? { ...b } : null;
  if (!b) return { ...a };
  return {
    input: a.input + b.input,
    output: a.output + b.output,
    cacheRead: a.cacheRead + b.cacheRead,
    cacheWrite: a.cacheWrite + b.cacheWrite,
    messages: a.messages + b.messages,
    costUsd: a.costUsd === null && b.costUsd === null ? null : (a.costUsd ?? 0) + (b.costUsd ?? 0),
    unpriced: a.unpriced || b.unpriced,
    floor: a.floor || b.floor,
  };
}

// An agent_done from before usage was published carries only cost_usd: the Agent tool's final request.
function ownUsage(node) {
  if (node.usage) return node.usage;
  if (node.costUsd == null) return null;
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, messages: 0, costUsd: node.costUsd, unpriced: false, floor: true };
}

/**
 * The alive node a node's figures belong under: its parent if alive, else its session's orchestrator. That is
 * where ingest moves them when it ends (`sub_usage`, ingest/agent_usage.py). Null for an orchestrator.
 */
export function heirOf(model, node) {
  if (node.agentId === MAIN) return null;
  const parent = node.parentId ? model.lookup(nodeId(node.sessionId, node.parentId)) : null;
  if (parent && parent !== node && parent.state !== "done") return parent;
  const main = model.nodes.get(nodeId(node.sessionId, MAIN));
  return main && main.state !== "done" && main !== node ? main : null;
}

/** Alive nodes by the id of the node their figures belong under (see heirOf). */
export function aliveChildren(model) {
  const children = new Map();
  for (const node of model.nodes.values()) {
    if (node.state === "done") continue;
    const heir = heirOf(model, node);
    if (!heir) continue;
    if (!children.has(heir.id)) children.set(heir.id, []);
    children.get(heir.id).push(node);
  }
  return children;
}

/**
 * For every drawn or remembered node, by id: `own` (usage), `sub` (sub_usage: its ended descendants) and
 * `subtree` = own + sub + the subtree totals of its alive children. A finished child is not added: ingest
 * moved its figures into an ancestor's sub_usage when it ended.
 */
export function subtreeTotals(model) {
  const children = aliveChildren(model);
  const out = new Map();
  const visit = (node, depth) => {
    const known = out.get(node.id);
    if (known) return known.subtree;
    const own = ownUsage(node);
    let subtree = addUsage(own, node.subUsage);
    // Marked before the children are visited, so a loop in bad data ends here.
    const entry = { own, sub: node.subUsage, subtree };
    out.set(node.id, entry);
    if (depth < MAX_DEPTH) {
      for (const child of children.get(node.id) ?? []) subtree = addUsage(subtree, visit(child, depth + 1));
    }
    entry.subtree = subtree;
    return subtree;
  };
  for (const node of model.nodes.values()) visit(node, 0);
  for (const node of model.ended.values()) visit(node, 0);
  return out;
}

/** "$0.42", "$12.30", "$0.004"; never rounds a real cost down to "$0". */
export function formatUsd(v) {
  if (v === 0) return "$0";
  if (v >= 100) return `$${Math.round(v)}`;
  if (v >= 0.1) return `$${v.toFixed(2)}`;
  if (v >= 0.001) return `$${v.toFixed(3)}`;
  return "<$0.001";
}

/** How a usage's cost reads: "$0.42", "≥ $0.12" (a floor, or partly unpriced), "unpriced", or "–" (unknown). */
export function costText(usage) {
  if (!usage) return "–";
  if (usage.costUsd === null) return usage.unpriced ? "unpriced" : "–";
  return `${usage.floor || usage.unpriced ? "≥ " : ""}${formatUsd(usage.costUsd)}`;
}

/** Why a cost is only a lower bound, in words; "" when it is exact. */
export function costNote(usage) {
  if (!usage) return "";
  const notes = [];
  if (usage.floor) notes.push("floor: only an agent's final request is known");
  if (usage.unpriced && usage.costUsd !== null) notes.push("partly unpriced: a model with no price");
  else if (usage.unpriced) notes.push("a model with no price");
  return notes.join("; ");
}

/** 950, 12.3k, 120k, 4.5M */
export function formatTokens(n) {
  if (n < 1000) return String(n);
  if (n < 10_000) return `${(n / 1000).toFixed(1)}k`;
  if (n < 1_000_000) return `${Math.round(n / 1000)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

/**
 * Cost seen to happen while the page was open: per session, the highest subtree total seen so far; every
 * rise is a delta stamped with the event's time. A dip is not spending (an agent's figures leave it when it
 * ends and come back in its parent's sub_usage), so only the part above the highest seen counts. The first
 * figure seen of a session (a snapshot, a page opened late) is where it starts, not spending.
 */
export class CostWindow {
  constructor(openedAt) {
    this.openedAt = openedAt;
    this.marks = new Map(); // session -> highest subtree cost seen
    this.buckets = new Map(); // floor(ts / BUCKET_MS) -> USD seen in it
  }

  /** A session that starts while we watch: everything it spends counts, from zero. */
  start(sessionId) {
    if (!this.marks.has(sessionId)) this.marks.set(sessionId, 0);
  }

  /** The session's subtree cost is now `usd` (null: unknown) at event time `ts`. */
  observe(sessionId, usd, ts, now) {
    if (usd === null || !Number.isFinite(usd)) return;
    const mark = this.marks.get(sessionId);
    this.marks.set(sessionId, Math.max(mark ?? usd, usd));
    if (mark === undefined || usd <= mark) return;
    const key = Math.floor(ts / BUCKET_MS);
    this.buckets.set(key, (this.buckets.get(key) ?? 0) + (usd - mark));
    this._trim(now);
  }

  /** A session that ended: a new one under its id starts over. */
  forget(sessionId) {
    this.marks.delete(sessionId);
  }

  /** A reset snapshot: Redis lost its state, so figures restart; what was counted stays counted. */
  clear() {
    this.marks.clear();
  }

  /** {usd, label}: the cost seen in the last hour, or since the page opened if that is less ("last 23 min"). */
  total(now) {
    this._trim(now);
    let usd = 0;
    for (const v of this.buckets.values()) usd += v;
    const open = now - this.openedAt;
    const label = open >= WINDOW_MS ? "last hour" : `last ${Math.max(1, Math.floor(open / 60_000))} min`;
    return { usd, label };
  }

  _trim(now) {
    const oldest = Math.floor((now - WINDOW_MS) / BUCKET_MS);
    for (const key of this.buckets.keys()) if (key < oldest) this.buckets.delete(key);
  }
}
