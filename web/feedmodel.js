// The activity feed's logic: each event in words, a ring of the last lines, filters, and the pause that
// holds the view still while the pointer is over it. Pure, like model.js; feed.js draws it.
import { MAIN, nodeId } from "./ids.js";
import { labelOf } from "./present.js";
import { truncate } from "./model.js";
import { costText, readUsage } from "./usage.js";

export const FEED_SIZE = 200;
const TEXT_MAX = 160;
export const OUTCOME_MARKS = { success: "✓", failure: "✕", partial: "◐", lost: "⌀", unknown: "?", ended: "■" };
// Notifications that another event already says: a permission dialog or an idle prompt is an agent_update.
const SAID_ELSEWHERE = new Set(["permission_prompt", "idle_prompt"]);

/** HH:MM:SS of a time in ms, on this machine's clock. */
export function clock(ts) {
  const d = new Date(ts);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

const firstLine = (v) => String(v ?? "").trim().split("\n")[0];

/**
 * What an event says, as {text, tone}, or null for an event that makes no line (a tool call ending well,
 * an update that changes nothing a reader follows). `waitingBefore` is the agent's waiting before it.
 */
export function describeEvent(data, waitingBefore = null) {
  const say = (text, tone) => ({ text: truncate(text, TEXT_MAX), tone });
  switch (data.type) {
    case "session_start":
      return say("session started", "session");
    case "session_end":
      return say(`session ended${data.reason ? ` (${data.reason})` : ""}`, "session");
    case "prompt":
      if (data.prompt) return say(`prompt: ${firstLine(data.prompt)}`, "prompt");
      return say(Number.isFinite(data.prompt_chars) ? `prompt (${data.prompt_chars} chars)` : "prompt", "prompt");
    case "agent_spawn":
      return say(`spawned${data.description ? `: ${firstLine(data.description)}` : ""}`, "spawn");
    case "agent_update": {
      if (!("waiting" in data) || !data.waiting || data.waiting === waitingBefore) return null;
      if (data.waiting === "input") return say("waiting for your input", "wait");
      return say(`waiting for permission${data.waiting_tool ? `: ${data.waiting_tool}` : ""}`, "wait");
    }
    case "agent_done": {
      if (data.merged_into) return null; // a stand-in that was another node all along: nothing ended
      const outcome = data.outcome ?? "unknown";
      const usage = readUsage(data.usage) ?? (Number.isFinite(data.cost_usd) ? readUsage({ cost_usd: data.cost_usd, basis: "floor" }) : null);
      const cost = usage ? costText(usage) : "–";
      return say(`done ${OUTCOME_MARKS[outcome] ?? "?"} ${outcome}${cost === "–" ? "" : ` ${cost}`}`, `done-${outcome}`);
    }
    case "tool_use":
      return say(`${data.tool ?? "tool"}${data.detail ? `: ${firstLine(data.detail)}` : ""}`, "tool");
    case "skill_use":
      return say(`skill ${data.skill ?? data.tool ?? ""}`.trim(), "tool");
    case "tool_fail":
      return say(`${data.tool ?? "tool"} ✕ failed${data.error ? `: ${firstLine(data.error)}` : ""}`, "fail");
    case "stop_fail":
      return say(`✕ stopped: ${firstLine(data.error || data.message || "failed")}`, "fail");
    case "notification":
      if (SAID_ELSEWHERE.has(data.notification_type)) return null;
      return say(`${data.title || data.notification_type || "notification"}${data.message ? `: ${firstLine(data.message)}` : ""}`, "note");
    case "compact_start":
      return say(`compacting${data.trigger ? ` (${data.trigger})` : ""}`, "note");
    case "compact_done":
      return say("compacted", "note");
    case "tool_done":
    case "permission_request": // its agent_update says "waiting for permission"
    default:
      return null;
  }
}

/**
 * The last FEED_SIZE lines, oldest first, each {n, seq, ts, time, sessionId, agentId, id, name, family,
 * text, tone}. view() gives the ones the filter lets through, newest first. While paused, the page keeps
 * showing what it showed; `unseen` counts the lines it holds back.
 */
export class FeedModel {
  constructor(size = FEED_SIZE) {
    this.size = size;
    this.lines = [];
    this.next = 0; // the n of the next line: lines are numbered in stream order
    this.filter = { session: null, agent: null }; // agent: a node id
    this.pausedAt = null; // the n of the first line held back, or null when live
    this.unseen = 0;
    this.waiting = new Map(); // node id -> its waiting, so only a new wait makes a line
    this.names = new Map(); // session id -> its orchestrator's label (the project folder)
  }

  get paused() {
    return this.pausedAt !== null;
  }

  /**
   * A snapshot at `seq` replaced the model (a replay seeking back, or a resync): lines of later seqs are from
   * a future the page no longer shows, so they go; a new epoch (`sameEpoch` false) starts the feed again.
   * Returns whether any line went.
   */
  rewind(seq, sameEpoch = true) {
    const before = this.lines.length;
    this.lines = sameEpoch && Number.isFinite(seq) ? this.lines.filter((line) => line.seq <= seq) : [];
    if (this.lines.length === before) return false;
    this.waiting.clear();
    this.unseen = Math.min(this.unseen, this.lines.length);
    return true;
  }

  /**
   * One event the model applied (`seq`, its data), and the model's node for it after applying (or null).
   * Returns the line, or null when the event makes none.
   */
  push(seq, data, node) {
    const sessionId = String(data.session_id);
    const agentId = String(data.agent_id || MAIN);
    const id = nodeId(sessionId, agentId);
    if (data.previous_id != null) {
      // A re-key: the stand-in's lines (its spawn, its first calls) are the real agent's.
      const from = nodeId(sessionId, String(data.previous_id));
      if (this.waiting.has(from)) this.waiting.set(id, this.waiting.get(from));
      this.waiting.delete(from);
      for (const line of this.lines) {
        if (line.id !== from) continue;
        line.id = id;
        line.agentId = agentId;
      }
      if (this.filter.agent === from) this.filter = { ...this.filter, agent: id };
    }
    const said = describeEvent(data, this.waiting.get(id) ?? null);
    if (data.type === "agent_update" && "waiting" in data) {
      if (data.waiting) this.waiting.set(id, data.waiting);
      else this.waiting.delete(id);
    } else if (data.type === "agent_done") {
      this.waiting.delete(id);
    } else if (data.type === "session_end") {
      for (const key of [...this.waiting.keys()]) if (key.startsWith(`${sessionId}/`)) this.waiting.delete(key);
    }
    if (node && agentId === MAIN) this.names.set(sessionId, labelOf(node));
    if (!said) return null;
    const ts = Number.isFinite(data.ts) ? data.ts : 0;
    const line = {
      n: this.next++,
      seq,
      ts,
      time: clock(ts),
      sessionId,
      agentId,
      id,
      name: node ? labelOf(node) : truncate(data.agent_type || agentId, 28),
      family: node?.family ?? (agentId === MAIN ? "main" : "other"),
      ...said,
    };
    this.lines.push(line);
    if (this.lines.length > this.size) this.lines.shift();
    if (this.paused && this.matches(line)) this.unseen++;
    return line;
  }

  matches(line, filter = this.filter) {
    return (!filter.session || line.sessionId === filter.session) && (!filter.agent || line.id === filter.agent);
  }

  /** The lines to show: the filter's, newest first; while paused, none newer than the pause. */
  view() {
    const out = [];
    for (let i = this.lines.length - 1; i >= 0; i--) {
      const line = this.lines[i];
      if (this.paused && line.n >= this.pausedAt) continue;
      if (this.matches(line)) out.push(line);
    }
    return out;
  }

  /** The pointer is over the feed: hold the view still. */
  pause() {
    if (this.paused) return;
    this.pausedAt = this.next;
    this.unseen = 0;
  }

  /** The pointer left: show everything again. */
  resume() {
    this.pausedAt = null;
    this.unseen = 0;
  }

  /**
   * Show one session, one agent (a node id; its session follows), or everything (nulls). A reader who asks
   * for a filter sees it applied now, paused or not.
   */
  setFilter({ session = null, agent = null }) {
    if (agent) session = agent.slice(0, agent.lastIndexOf("/"));
    this.filter = { session, agent };
    if (this.paused) {
      this.pausedAt = this.next;
      this.unseen = 0;
    }
  }

  /** Sessions the feed has lines of, in order of their first line: [{id, name}]. */
  sessions() {
    const seen = new Map();
    for (const line of this.lines) {
      if (!seen.has(line.sessionId)) seen.set(line.sessionId, { id: line.sessionId, name: this.names.get(line.sessionId) ?? line.sessionId });
    }
    if (this.filter.session && !seen.has(this.filter.session)) {
      seen.set(this.filter.session, { id: this.filter.session, name: this.names.get(this.filter.session) ?? this.filter.session });
    }
    return [...seen.values()];
  }

  /** Agents of a session the feed has lines of, in order of their first line: [{id, name, family}]. */
  agents(sessionId) {
    const seen = new Map();
    for (const line of this.lines) {
      if (line.sessionId === sessionId) seen.set(line.id, { id: line.id, name: line.name, family: line.family });
    }
    const wanted = this.filter.agent;
    if (wanted && wanted.startsWith(`${sessionId}/`) && !seen.has(wanted)) {
      seen.set(wanted, { id: wanted, name: wanted.slice(sessionId.length + 1), family: "other" });
    }
    return [...seen.values()].sort((a, b) => (a.id.endsWith(`/${MAIN}`) ? -1 : b.id.endsWith(`/${MAIN}`) ? 1 : 0));
  }
}
