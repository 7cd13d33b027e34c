// The agentwatch page: WebSocket in, force-directed graph out. Protocol rules live in model.js; graph.js
// draws nodes and links, effects.js animates, tooltip.js explains a node, connection.js keeps the socket.
// Everything from payloads goes through .text()/textContent, never as HTML.
import { createConnection } from "./connection.js";
import { createEffects } from "./effects.js";
import { createGraph } from "./graph.js";
import { GraphModel, MAIN, nodeId } from "./model.js";
import { formatAge, shareText } from "./present.js";
import { createTooltip } from "./tooltip.js";
import { createToolbar } from "./toolbar.js";
import { createPanels } from "./panels.js";
import { createReplay } from "./replay.js";
import { createTimeline } from "./timeline.js";

const TICK_MS = 250; // counters and the last-event age
const STATUS_TEXT = {
  connecting: "○ connecting",
  connected: "● connected",
  reconnecting: "○ reconnecting",
  disconnected: "✕ disconnected",
  expired: "✕ link expired",
  replay: "◉ replay",
  refused: "✕ replay refused",
};

const model = new GraphModel();
const stats = {
  fps: 0,
  frames: 0,
  pulses: 0, // pulse animations started
  coalesced: 0, // tool calls that landed on a node already pulsing
  fails: 0,
  labels: 0,
  labelsDropped: 0,
  flashes: 0,
  connects: 0,
  status: "connecting",
  lastPulse: null, // {id, label, at}: lets a test measure event-to-pulse latency
};
// Read-only view for tests and curious humans; nothing here controls the page.
Object.defineProperty(window, "agentwatch", {
  value: Object.freeze({
    model,
    get stats() {
      return { ...stats, lastSeq: model.seq, epoch: model.epoch, alive: model.alive, ...model.stats };
    },
  }),
});

const $ = (id) => document.getElementById(id);

if (typeof window.d3 === "undefined") {
  const fatal = $("fatal");
  fatal.textContent = "d3 missing: run make up";
  fatal.hidden = false;
} else {
  start(window.d3);
}

function start(d3) {
  const tip = createTooltip(model, $("tooltip"));
  const graph = createGraph(d3, model, tip);
  createToolbar(model, graph, $("toolbar")); // zoom, fit, sessions, tool satellites
  const effects = createEffects(d3, graph.element, stats);
  // Replay (issue 12): the timeline under the graph drives a replay socket that feeds apply() below.
  const replay = createReplay({ model, apply, setStatus, connection: () => connection });
  createTimeline(d3, model, replay, $("timeline"), () => stats.status); // before the panels: they keep clear of it
  const panels = createPanels(model, graph); // inspector, activity feed, session header, cost labels
  // A page opened from a share link (`agentwatch share`) shows one session and says so until it expires.
  const share = { shown: new URLSearchParams(location.search).has("share"), project: null, expired: false };
  const connection = createConnection({
    resume: () => replay.resume(model.resumeParams()),
    onMessage: (msg) => apply(replay.fromLive(msg)),
    onStatus: setStatus,
    onEnd: () => {
      // Only a share link ends: the relay closed it (4401) and would refuse it again.
      setStatus("expired");
      share.expired = true;
      shareBanner();
    },
  });

  // One frame, live or replayed. A silent one changes the model without effects (a replay landing on its seq).
  function apply(msg, silent = false) {
    const result = model.receive(msg, Date.now());
    if (result.resync) {
      if (replay.active) replay.resync();
      else connection.resync();
      return;
    }
    panels.receive(msg, result);
    if (result.effects[0]?.type === "reset") clear();
    // A re-key is applied now, even in a hidden tab: later effects and the next frame name the new id.
    for (const e of result.effects) {
      if (e.type !== "rekey") continue;
      graph.rekey(e.from, e.to);
      effects.rekey(e.from, e.to);
    }
    if (!silent) effects.queue(result.effects.filter((e) => e.type !== "rekey" && e.type !== "reset"));
  }

  function clear() {
    graph.clear();
    effects.clear();
    tip.hide();
  }

  function setStatus(status) {
    if (status === "connected") stats.connects++;
    stats.status = status;
    const badge = $("status");
    badge.dataset.status = status;
    badge.textContent = STATUS_TEXT[status];
  }

  let frameCount = 0;
  let fpsSince = performance.now();
  function frame(t) {
    frameCount++;
    stats.frames++;
    if (t - fpsSince >= 1000) {
      stats.fps = Math.round((frameCount * 1000) / (t - fpsSince));
      $("fps").textContent = stats.fps;
      frameCount = 0;
      fpsSince = t;
    }
    // Effects are drawn after update(), so the nodes they refer to exist.
    if (graph.stale()) {
      graph.update();
      panels.drawn();
      counters();
    }
    effects.play();
    requestAnimationFrame(frame);
  }

  function shareBanner() {
    if (!share.shown) return;
    const banner = $("share");
    banner.hidden = false;
    banner.dataset.state = share.expired ? "expired" : "live";
    const echo = model.share;
    if (!echo) {
      // Before any snapshot. A forged link gets HTTP 401, which a page cannot tell from a relay that is down.
      if (share.expired) banner.textContent = "shared view: the link has expired";
      else if (stats.status === "disconnected") banner.textContent = "shared view: link refused, or relay down";
      else banner.textContent = "shared view: connecting";
      return;
    }
    // The orchestrator leaves when the session ends: keep the project it had.
    share.project = model.nodes.get(nodeId(echo.session, MAIN))?.project ?? share.project;
    banner.textContent = shareText(share.project, echo.session, echo.expires * 1000 - Date.now(), share.expired);
  }

  function counters() {
    const now = Date.now();
    $("count-alive").textContent = model.alive;
    $("count-spawned").textContent = model.stats.spawned;
    $("count-tools").textContent = model.stats.tools;
    $("count-done").textContent = model.stats.done;
    const last = model.stats.lastEventTs;
    $("last-event-age").textContent = last === null ? "–" : `${formatAge(now - last)} ago`;
  }

  setInterval(() => {
    model.sweep(Date.now());
    counters();
    shareBanner();
    tip.refresh();
    panels.tick();
  }, TICK_MS);
  requestAnimationFrame(frame);
  shareBanner();
  if (!replay.fromUrl()) connection.start();
}
