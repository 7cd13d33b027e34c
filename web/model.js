// Pure logic for the agentwatch page: protocol messages in, a graph model and visual effects out.
// No DOM and no d3 here, so `node --test web/test/` can pin every rule the page depends on.
import { MAIN, nodeId } from "./ids.js";
import { CALLS_KEPT, count, endCall, fill, ms, newNode, startCall, text, toolMap, truncate } from "./node.js";
import { CostWindow, readUsage, subtreeTotals } from "./usage.js";

export { MAIN, nodeId };
export { CALLS_KEPT, modelFamily, truncate } from "./node.js";
// How long a finished node stays drawn: the renderer's flash (300 ms) plus its fade-out (800 ms).
export const LEAVE_MS = 1100;
// Ids of finished agents we remember, so a late tool_done cannot resurrect a node as a ghost.
const GONE_MEMORY = 5000;
// Finished agents kept whole (their last state and outcome), so the inspector can still show them.
export const ENDED_MEMORY = 500;

const STOP_LABEL_MAX = 40;

export class GraphModel {
  constructor(clock = Date.now) {
    this.seq = null;
    this.epoch = null;
    // A filtered view (a share link) sees one session's events, with their real seqs: the relay sends a
    // ping with the seq before an event whenever it skipped others, so events still come without a gap.
    this.filtered = false;
    this.share = null; // {session, expires} of a share link, as the relay echoes it
    this.nodes = new Map();
    // version changes when the set of nodes or links changes (the simulation needs new input);
    // rev changes on any visible change (the page redraws attributes).
    this.version = 0;
    this.rev = 0;
    this.stats = { spawned: 0, tools: 0, done: 0, events: 0, duplicates: 0, resyncs: 0, lastEventTs: null };
    this.gone = new Set();
    this.ended = new Map(); // id -> a finished node as it was last, newest last (see ENDED_MEMORY)
    // Costs seen to happen while the page was open, for "the last hour" (see usage.js).
    this.costs = new CostWindow(clock());
    this._totals = { rev: -1, map: null };
  }

  /** A node by id: drawn, or finished and still remembered. */
  lookup(id) {
    return this.nodes.get(id) ?? this.ended.get(id) ?? null;
  }

  /** Tokens and cost of every drawn or remembered node: {own, sub, subtree}, by node id (see usage.js). */
  totals() {
    if (this._totals.rev !== this.rev) this._totals = { rev: this.rev, map: subtreeTotals(this) };
    return this._totals.map;
  }

  get alive() {
    let n = 0;
    for (const node of this.nodes.values()) if (node.state !== "done") n++;
    return n;
  }

  /** Where to resume after a reconnect, or null when we have nothing to resume from. */
  resumeParams() {
    return this.seq === null ? null : { since: this.seq, epoch: this.epoch };
  }

  /**
   * Apply one server frame. Returns {effects} to draw, {ignored} for frames that change nothing,
   * or {resync} when the page must close the socket and reconnect with resumeParams().
   */
  receive(msg, now) {
    if (msg === null || typeof msg !== "object") return { ignored: "not an object", effects: [] };
    if (msg.type === "snapshot") return this._snapshot(msg, now);
    if (msg.type === "ping") {
      // A ping carries the last seq sent: if we are behind, a frame was lost on the way.
      if (this.seq === null) return { ignored: "ping before snapshot", effects: [] };
      if (msg.epoch !== this.epoch) return this._resync("epoch");
      // Behind what we applied, in the same epoch: Redis rolled back (failover, restore); start over.
      if (msg.seq < this.seq) return this._resync("rollback");
      if (msg.seq > this.seq) {
        if (!this.filtered) return this._resync("gap");
        this.seq = msg.seq; // the events up to it were for other sessions
      }
      return { effects: [] };
    }
    if (msg.type !== "event") return { ignored: `unknown frame type ${msg.type}`, effects: [] };
    if (this.seq === null) return this._resync("event before snapshot");
    if (msg.epoch !== this.epoch) return this._resync("epoch");
    if (msg.seq <= this.seq) {
      this.stats.duplicates++;
      return { ignored: "duplicate", effects: [] };
    }
    if (msg.seq > this.seq + 1) return this._resync("gap");
    this.seq = msg.seq;
    this.stats.events++;
    const effects = [];
    if (msg.data && typeof msg.data === "object" && msg.data.session_id) this._apply(msg.data, now, effects);
    return { effects };
  }

  /** Drop finished nodes whose leave animation is over; returns how many went. */
  sweep(now) {
    let removed = 0;
    for (const [id, node] of this.nodes) {
      if (node.state === "done" && node.goneAt <= now) {
        this.nodes.delete(id);
        removed++;
      }
    }
    if (removed) this._changed(true);
    return removed;
  }

  /** One link per non-orchestrator: to its parent if still drawn, else to its session's orchestrator. */
  links() {
    const links = [];
    for (const node of this.nodes.values()) {
      if (node.agentId === MAIN) continue;
      const parent =
        (node.parentId && this.nodes.get(nodeId(node.sessionId, node.parentId))) ||
        this.nodes.get(nodeId(node.sessionId, MAIN));
      if (parent && parent !== node) links.push({ source: parent, target: node });
    }
    return links;
  }

  /** Session ids in order of first appearance, for a stable layout. */
  sessions() {
    const seen = new Set();
    for (const node of this.nodes.values()) seen.add(node.sessionId);
    return [...seen];
  }

  _resync(reason) {
    this.stats.resyncs++;
    return { resync: reason, effects: [] };
  }

  _changed(structural) {
    this.rev++;
    if (structural) this.version++;
  }

  _snapshot(msg, now) {
    const fresh = msg.reset === true || this.seq === null || msg.epoch !== this.epoch;
    const previous = fresh ? new Map() : this.nodes;
    this.nodes = new Map();
    if (fresh) {
      this.gone.clear();
      this.ended.clear();
      // Counters restart from what the snapshot shows, so a page opened mid-session is not all zeros.
      this.stats = { ...this.stats, spawned: 0, tools: 0, done: 0, lastEventTs: null };
    }
    const records = (Array.isArray(msg.alive) ? msg.alive : []).filter((r) => r && r.session_id && r.agent_id);
    const listed = new Set(records.map((r) => nodeId(r.session_id, r.agent_id)));
    const effects = [];
    for (const record of records) {
      const id = nodeId(record.session_id, record.agent_id);
      // Reusing the old object keeps its position and velocity in the simulation.
      const node =
        previous.get(id) ??
        this._adopt(previous, record, listed, effects) ??
        newNode(String(record.session_id), String(record.agent_id), record.spawned_at ?? now);
      if (node.state === "done") continue;
      fill(node, record);
      node.toolCount = record.tool_count ?? node.toolCount;
      node.lastSeen = record.last_seen ?? node.lastSeen;
      // Counters only snapshots carry; the events count on from them (absent means none yet).
      if (record.tools && typeof record.tools === "object") node.tools = toolMap(record.tools);
      if (record.prompts !== undefined) node.prompts = count(record.prompts);
      if (record.agents_total !== undefined) node.agentsTotal = count(record.agents_total);
      this.nodes.set(id, node);
      if (fresh) {
        if (record.agent_id !== MAIN) this.stats.spawned++;
        this.stats.tools += node.toolCount;
      }
      this.stats.lastEventTs = Math.max(this.stats.lastEventTs ?? 0, node.lastSeen ?? 0) || null;
    }
    // Let nodes that were already leaving finish their animation.
    for (const [id, node] of previous) if (node.state === "done" && !this.nodes.has(id)) this.nodes.set(id, node);
    for (const sessionId of this.sessions()) this._ensure(sessionId, MAIN, now);
    this.seq = msg.seq;
    this.epoch = msg.epoch;
    this.filtered = msg.filtered === true;
    this.share = msg.share && typeof msg.share === "object" ? msg.share : null;
    this._changed(true);
    // What a snapshot shows was spent before we looked; only a resync's catch-up is new to us.
    if (fresh) this.costs.clear();
    for (const sessionId of this.sessions()) this._observeCost(sessionId, now, now);
    return { effects: fresh ? [{ type: "reset" }] : effects };
  }

  // A resync that missed an agent_update re-key: the record's tool_use_id names the stand-in id we drew.
  _adopt(previous, record, listed, effects) {
    if (!record.tool_use_id) return null;
    const fromId = nodeId(record.session_id, record.tool_use_id);
    const from = previous.get(fromId);
    if (!from || !from.provisional || from.state === "done" || listed.has(fromId)) return null;
    previous.delete(fromId);
    from.id = nodeId(record.session_id, record.agent_id);
    from.agentId = String(record.agent_id);
    effects.push({ type: "rekey", from: fromId, to: from.id });
    return from;
  }

  _apply(data, now, effects) {
    const sessionId = String(data.session_id);
    const agentId = String(data.agent_id || MAIN);
    const id = nodeId(sessionId, agentId);
    const ts = Number.isFinite(data.ts) ? data.ts : now;
    // Our clock, not the event's: the hook may run on a machine whose clock disagrees with ours.
    this.stats.lastEventTs = now;
    let node;
    switch (data.type) {
      case "session_start":
        this.costs.start(sessionId); // a session born while we watch: all it spends is new
        this._revive(nodeId(sessionId, MAIN));
        node = this._ensure(sessionId, MAIN, ts, effects);
        fill(node, data);
        break;
      case "session_end":
        for (const other of this.nodes.values()) {
          if (other.sessionId === sessionId && other.state !== "done") {
            this._finish(other, other.agentId === MAIN ? "ended" : "lost", now, effects, { ts });
          }
        }
        this.costs.forget(sessionId);
        return;
      case "prompt":
        node = this._ensure(sessionId, MAIN, ts, effects);
        if (node) {
          node.prompts++;
          effects.push({ type: "prompt", id: node.id });
        }
        break;
      case "agent_spawn":
        this.stats.spawned++;
        this._revive(id);
        node = this._ensure(sessionId, agentId, ts, effects);
        if (node) fill(node, data);
        this._countAgents(sessionId, 1);
        this._changed(true); // the parent may have changed, and with it the link
        break;
      case "agent_done":
        node = this.nodes.get(id);
        if (data.merged_into) {
          // A stand-in that was the same agent as another node all along: it leaves without a flash.
          if (node) {
            this.nodes.delete(id);
            this.gone.add(id);
            this.stats.spawned = Math.max(0, this.stats.spawned - 1);
            this._changed(true);
          }
          this._countAgents(sessionId, -1); // it was counted once already, as the node it merged into
          return;
        }
        this.stats.done++;
        if (node && node.state !== "done") {
          if (Number.isFinite(data.cost_usd)) node.costUsd = data.cost_usd;
          this._finish(node, data.outcome, now, effects, data);
          this._observeCost(sessionId, ts, now);
        }
        return;
      case "tool_use":
      case "skill_use":
        this.stats.tools++;
        node = this._ensure(sessionId, agentId, ts, effects);
        if (node) {
          node.toolCount++;
          const tool = String(data.tool || "tool");
          node.tools.set(tool, (node.tools.get(tool) ?? 0) + 1);
          startCall(node, data, ts);
          const skill = data.type === "skill_use";
          effects.push({ type: "pulse", id: node.id, label: String((skill && data.skill) || data.tool || "tool"), skill });
        }
        break;
      case "tool_done":
        node = this.nodes.get(id);
        if (node && node.state !== "done") {
          endCall(node, data, ts, false);
          effects.push({ type: "tick", id });
        }
        break;
      case "tool_fail":
        node = this._ensure(sessionId, agentId, ts, effects);
        if (node) {
          endCall(node, data, ts, true);
          effects.push({ type: "fail", id: node.id, label: String(data.tool || "tool") });
        }
        break;
      case "stop_fail":
        // A turn that ended on an API error (rate limit, overload): a failure flash, and the agent lives on.
        node = this._ensure(sessionId, agentId, ts, effects);
        if (node) effects.push({ type: "fail", id: node.id, label: truncate(data.error || "stop failed", STOP_LABEL_MAX) });
        break;
      case "agent_update":
        node = this._update(sessionId, agentId, data, ts, effects);
        if (node) fill(node, data);
        break;
      case "notification":
        // Waiting for the person is ingest's call now (agent_update.waiting), not a guess from here.
        node = this._ensure(sessionId, agentId, ts, effects);
        break;
      default:
        return;
    }
    if (!node || node.state === "done") return;
    node.lastSeen = ts;
    this._changed(false);
    if (data.usage !== undefined || data.sub_usage !== undefined) this._observeCost(sessionId, ts, now);
  }

  // The session's orchestrator counts every sub-agent it had (agent_spawn), less stand-ins merged away.
  _countAgents(sessionId, n) {
    const main = this.nodes.get(nodeId(sessionId, MAIN));
    if (main && main.state !== "done") main.agentsTotal = Math.max(0, main.agentsTotal + n);
  }

  _observeCost(sessionId, ts, now) {
    const main = this.lookup(nodeId(sessionId, MAIN));
    const total = main ? this.totals().get(main.id)?.subtree : null;
    this.costs.observe(sessionId, total?.costUsd ?? null, ts, now);
  }

  // The node an agent_update is about. With previous_id, the node drawn under the stand-in id becomes
  // this one: same object (layout position, counts, spawn time), new key, children re-parented.
  _update(sessionId, agentId, data, ts, effects) {
    const previous = text(data.previous_id);
    if (previous === null || previous === agentId) return this._ensure(sessionId, agentId, ts, effects);
    const id = nodeId(sessionId, agentId);
    const fromId = nodeId(sessionId, previous);
    const from = this.nodes.get(fromId);
    if (from?.state === "done" || (!from && this.gone.has(fromId))) {
      // It finished under its stand-in id: its real id must not come back as a ghost.
      this._forget(id);
      return null;
    }
    if (!from) {
      // The page joined after the spawn (or missed it): this is the spawn.
      const known = this.nodes.has(id);
      const node = this._ensure(sessionId, agentId, ts, effects);
      if (node && !known) this.stats.spawned++;
      return node;
    }
    const other = this.nodes.get(id);
    if (other && other.state !== "done") {
      // Its own calls arrived first and drew it apart: fold that node into the one drawn since the spawn.
      from.toolCount += other.toolCount;
      from.spawnedAt = Math.min(from.spawnedAt, other.spawnedAt);
      for (const [tool, n] of other.tools) from.tools.set(tool, (from.tools.get(tool) ?? 0) + n);
      from.calls = [...from.calls, ...other.calls].sort((a, b) => a.ts - b.ts).slice(-CALLS_KEPT);
    }
    // Rebuild the map rather than delete and set, so the node keeps its place in the drawing order.
    const nodes = new Map();
    for (const [key, node] of this.nodes) {
      if (key === fromId) nodes.set(id, node);
      else if (key !== id) nodes.set(key, node);
    }
    this.nodes = nodes;
    this.gone.delete(id);
    from.id = id;
    from.agentId = agentId;
    for (const node of this.nodes.values()) {
      if (node.sessionId === sessionId && node.parentId === previous) node.parentId = agentId;
    }
    this._changed(true);
    effects.push({ type: "rekey", from: fromId, to: id });
    return from;
  }

  // The node for (session, agent), created on first sight (with its orchestrator) so that no
  // event is dropped; null for an agent that already finished.
  _ensure(sessionId, agentId, ts, effects) {
    const id = nodeId(sessionId, agentId);
    const existing = this.nodes.get(id);
    if (existing) return existing.state === "done" ? null : existing;
    if (this.gone.has(id)) return null;
    if (agentId !== MAIN && !this._ensure(sessionId, MAIN, ts, effects)) return null;
    const node = newNode(sessionId, agentId, ts);
    this.nodes.set(id, node);
    this._changed(true);
    effects?.push({ type: "spawn", id });
    return node;
  }

  _forget(id) {
    this.gone.add(id);
    if (this.gone.size > GONE_MEMORY) this.gone.delete(this.gone.values().next().value);
  }

  // A new session or spawn under an id that finished earlier starts over instead of being ignored.
  _revive(id) {
    this.gone.delete(id);
    this.ended.delete(id);
    if (this.nodes.get(id)?.state === "done") this.nodes.delete(id);
  }

  // An agent ends: it keeps its last state, with the final figures agent_done brings, for the inspector.
  _finish(node, outcome, now, effects, data = {}) {
    const ts = Number.isFinite(data.ts) ? data.ts : now;
    node.state = "done";
    node.outcome = outcome ?? "unknown";
    node.goneAt = now + LEAVE_MS;
    node.endedAt = ts;
    node.durationMs = ms(data.duration_ms);
    if (data.usage !== undefined) node.usage = readUsage(data.usage);
    if (Number.isFinite(data.waited_ms)) node.waitedMs = data.waited_ms;
    else if (node.waiting && node.waitingSince != null) node.waitedMs += Math.max(0, ts - node.waitingSince);
    node.waiting = null;
    node.waitingSince = null;
    node.compacting = false;
    this._forget(node.id);
    this.ended.delete(node.id);
    this.ended.set(node.id, node);
    if (this.ended.size > ENDED_MEMORY) this.ended.delete(this.ended.keys().next().value);
    this._changed(false);
    effects.push({ type: "done", id: node.id, outcome: node.outcome });
  }
}
