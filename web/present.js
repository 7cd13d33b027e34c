// How the model is presented: where each session sits, and what a node shows as text (its label, the
// waiting ring's words, the tooltip lines, and view(), the attributes the page sets). Pure, like
// model.js, so the node tests pin what a reader of the page sees.
import { MAIN, truncate } from "./model.js";

// The page's session anchors keep orchestrators at least this far apart (in layout units).
export const MIN_SESSION_GAP = 220;
// Longest tool name the waiting ring spells out (MCP tools can be long: mcp__server__tool).
const WAIT_TOOL_MAX = 32;

/**
 * Centres for each session's orchestrator: one session sits in the middle; several share the
 * area in a grid whose cells are at least MIN_SESSION_GAP apart, so no two overlap.
 */
export function sessionAnchors(sessionIds, width, height) {
  const anchors = new Map();
  const n = sessionIds.length;
  if (n === 0) return anchors;
  const cols = Math.max(1, Math.ceil(Math.sqrt((n * width) / Math.max(1, height))));
  const rows = Math.ceil(n / cols);
  const cellW = Math.max(MIN_SESSION_GAP, width / cols);
  const cellH = Math.max(MIN_SESSION_GAP, height / rows);
  // Centre the grid even when the minimum gap makes it larger than the view.
  const left = (width - cellW * cols) / 2;
  const top = (height - cellH * rows) / 2;
  sessionIds.forEach((id, i) => {
    const row = Math.floor(i / cols);
    // The last row may be short: centre it too.
    const inRow = row === rows - 1 ? n - row * cols : cols;
    const offset = ((cols - inRow) * cellW) / 2;
    anchors.set(id, { x: left + offset + cellW * ((i % cols) + 0.5), y: top + cellH * (row + 0.5) });
  });
  return anchors;
}

export function formatAge(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * The share banner: whose session (its project folder, else its id), and how long the link has left.
 * `expired` comes from the relay (close 4401), not from this clock, which may disagree with the relay's.
 */
export function shareText(project, session, remainingMs, expired) {
  const folder = project ? String(project).split("/").filter(Boolean).pop() : null;
  const name = folder ? truncate(folder, 40) : `session ${truncate(session, 13)}`;
  if (expired) return `shared view of ${name}: the link has expired`;
  if (remainingMs < 1000) return `shared view of ${name}, expires now`;
  return `shared view of ${name}, expires in ${formatAge(remainingMs)}`;
}

/** How long the agent has waited on the person so far: finished waits plus the one running now. */
export function waitedFor(node, now) {
  const running = node.waiting && node.waitingSince != null ? Math.max(0, now - node.waitingSince) : 0;
  return (node.waitedMs ?? 0) + running;
}

/** The text over a waiting node's ring; "" when it does not wait. */
export function waitText(node) {
  if (!node.waiting) return "";
  if (node.waiting === "input") return "waiting for your input";
  return node.waitingTool ? `waiting for you: ${truncate(node.waitingTool, WAIT_TOOL_MAX)}` : "waiting for you";
}

/** The name under a node: its agent type, or the orchestrator's project folder. */
export function labelOf(node) {
  if (node.agentId !== MAIN) return truncate(node.agentType, 28);
  return node.project ? truncate(node.project.split("/").filter(Boolean).pop(), 28) : "main";
}

/** What the page draws for a node, as its attributes and texts say it; two pages showing the same equal here. */
export function view(node) {
  return {
    id: node.id,
    family: node.family,
    state: node.state,
    waiting: node.waiting ?? "",
    waitText: waitText(node),
    compacting: node.agentId === MAIN && node.compacting,
    label: labelOf(node),
  };
}

/** The tooltip lines for a node, as plain strings (the page renders them as text). */
export function describe(node, now) {
  const main = node.agentId === MAIN;
  const lines = [main ? `orchestrator${node.project ? ` · ${node.project}` : ""}` : node.agentType];
  if (node.description) lines.push(truncate(node.description, 140));
  lines.push(`model: ${node.model ?? "unknown"}${main ? "" : ` (${node.family})`}`);
  lines.push(`age: ${formatAge(now - node.spawnedAt)}`);
  lines.push(`tool calls: ${node.toolCount}`);
  if (node.costUsd != null) lines.push(`cost: $${node.costUsd.toFixed(node.costUsd < 1 ? 4 : 2)}`);
  if (node.background) lines.push("background");
  if (node.state !== "done" && node.waiting === "input") lines.push("waiting for your input");
  else if (node.state !== "done" && node.waiting) lines.push(`waiting for you: ${node.waitingTool ? `${node.waitingTool} ` : ""}permission`);
  if (node.waitedMs > 0 || node.waiting) lines.push(`waited for you: ${formatAge(waitedFor(node, now))}`);
  if (main && node.compacting) lines.push("compacting");
  if (node.provisional) lines.push("id not known yet");
  if (node.link === "inferred") lines.push("parent inferred");
  if (node.link === "none") lines.push("no spawn seen");
  if (node.state === "done") lines.push(`finished: ${node.outcome}`);
  lines.push(`id: ${node.agentId}`);
  return lines;
}
