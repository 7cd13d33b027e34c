// The agentwatch page: WebSocket in, force-directed graph out. Protocol rules live in model.js;
// this file only draws. Everything from payloads goes through .text()/textContent, never as HTML.
import {
  GraphModel,
  LEAVE_MS,
  MAIN,
  backoffDelay,
  describe,
  formatAge,
  sessionAnchors,
  streamUrl,
  truncate,
} from "./model.js";

const R = 8;
const R_MAIN = 13;
const PULSE_SCALE = 1.5; // 8 -> 12 -> 8
const PULSE_MS = 400;
const SPAWN_MS = 300;
const FLASH_MS = 300;
const FADE_MS = LEAVE_MS - FLASH_MS; // 800: the model drops the node when the fade ends
const FAIL_MS = 600;
const PROMPT_MS = 900;
const LABEL_MS = 800;
const LABEL_RISE = 30;
const MAX_LABELS = 30; // floating labels at once; beyond that they are skipped, pulses still show
const MAX_PENDING = 2000; // effects waiting for a frame; a hidden tab gets no frames
const REHEAT_ALPHA = 0.3; // gentle: nodes drift to their place instead of the whole graph jumping
const DISCONNECTED_AFTER = 4; // failed attempts (8 to 15 s of backoff) before the badge says disconnected
const TICK_MS = 250; // counters and the last-event age
const CROWDED = 60; // above this many nodes, agent-type labels show on hover only, or they overlap into noise
const OUTCOMES = {
  success: { color: "#22c55e", mark: "✓ done" },
  failure: { color: "#ef4444", mark: "✕ failed" },
  partial: { color: "#f59e0b", mark: "◐ partial" },
  lost: { color: "#6b7280", mark: "⌀ lost" },
  unknown: { color: "#64748b", mark: "? unknown" },
  ended: { color: "#64748b", mark: "■ ended" },
};
const STATUS_TEXT = {
  connecting: "○ connecting",
  connected: "● connected",
  reconnecting: "○ reconnecting",
  disconnected: "✕ disconnected",
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
const radius = (d) => (d.agentId === MAIN ? R_MAIN : R);

if (typeof window.d3 === "undefined") {
  const fatal = $("fatal");
  fatal.textContent = "d3 missing: run make up";
  fatal.hidden = false;
} else {
  start(window.d3);
}

function start(d3) {
  let linkSel = d3.select("#links").selectAll("line");
  let nodeSel = d3.select("#nodes").selectAll("g.node");
  const floaters = d3.select("#floaters");
  const elements = new Map(); // node id -> its <g>, so effects find it without a selector
  const pulseUntil = new WeakMap(); // <g> -> end of its running pulse; calls before then coalesce
  const pending = [];
  let liveLabels = 0;
  let anchors = new Map();
  let width = 0;
  let height = 0;
  let drawnRev = -1;
  let simVersion = -1;

  const anchorOf = (d) => anchors.get(d.sessionId) ?? { x: width / 2, y: height / 2 };
  const simulation = d3
    .forceSimulation()
    .alphaDecay(0.04)
    .velocityDecay(0.45)
    .force(
      "link",
      d3
        .forceLink()
        .distance((l) => (l.source.agentId === MAIN ? 100 : 60))
        .strength(0.5),
    )
    // Few nodes get room for their labels; a crowd packs tighter so it still fits the window.
    .force("charge", d3.forceManyBody().strength(() => (model.nodes.size > CROWDED ? -90 : -220)).distanceMax(320))
    .force("collide", d3.forceCollide((d) => radius(d) + (model.nodes.size > CROWDED ? 5 : 16)))
    // A weak pull to the session's anchor keeps several sessions' clouds apart.
    .force("x", d3.forceX((d) => anchorOf(d).x).strength(0.02))
    .force("y", d3.forceY((d) => anchorOf(d).y).strength(0.02))
    .on("tick", ticked);

  function resize() {
    const scale = Math.min(2.5, Math.max(1, Math.min(innerWidth / 1280, innerHeight / 720)));
    width = innerWidth / scale;
    height = innerHeight / scale;
    d3.select("#viewport").attr("transform", `scale(${scale})`);
    simVersion = -1; // re-anchor on the next frame
  }

  // Orchestrators are pinned to their session's anchor; a newcomer starts next to its parent,
  // so it visibly radiates from the agent that spawned it.
  function place(nodes) {
    anchors = sessionAnchors(model.sessions(), width, height);
    for (const d of nodes) {
      const a = anchorOf(d);
      if (d.agentId === MAIN) {
        d.fx = a.x;
        d.fy = a.y;
      }
      if (d.x !== undefined) continue;
      const parent =
        model.nodes.get(`${d.sessionId}/${d.parentId}`) ?? model.nodes.get(`${d.sessionId}/${MAIN}`) ?? a;
      const angle = Math.random() * 2 * Math.PI;
      const from = parent.x !== undefined && parent !== d ? parent : a;
      d.x = from.x + (d.agentId === MAIN ? 0 : 20 * Math.cos(angle));
      d.y = from.y + (d.agentId === MAIN ? 0 : 20 * Math.sin(angle));
    }
  }

  function update() {
    drawnRev = model.rev;
    const nodes = [...model.nodes.values()];
    if (model.version !== simVersion) {
      simVersion = model.version;
      place(nodes);
      const links = model.links();
      simulation.nodes(nodes);
      simulation.force("link").links(links);
      simulation.alpha(Math.max(simulation.alpha(), REHEAT_ALPHA)).restart();
      linkSel = linkSel
        .data(links, (l) => l.target.id)
        .join((enter) =>
          enter
            .append("line")
            .attr("class", "link")
            .style("opacity", 0)
            .call((e) => e.transition().duration(SPAWN_MS).style("opacity", 1)),
        )
        .attr("data-parent", (l) => l.source.id)
        .attr("data-child", (l) => l.target.id);
    }
    nodeSel = nodeSel
      .data(nodes, (d) => d.id)
      .join(enterNode, undefined, (exit) => exit.each((d) => elements.delete(d.id)).remove());
    nodeSel.attr("data-state", (d) => d.state).attr("data-model-family", (d) => d.family);
    nodeSel.select(".label").text(labelOf);
    d3.select("#graph").classed("crowded", nodes.length > CROWDED);
    ticked();
    counters();
  }

  function enterNode(enter) {
    const g = enter
      .append("g")
      .attr("class", "node")
      .attr("data-id", (d) => d.id)
      .attr("data-pulses", 0)
      .attr("data-fails", 0)
      .style("opacity", 0)
      .each(function (d) {
        elements.set(d.id, this);
      });
    g.filter((d) => d.agentId === MAIN)
      .append("circle")
      .attr("class", "halo")
      .attr("r", R_MAIN * 2.6);
    g.append("circle")
      .attr("class", "ring")
      .attr("r", (d) => radius(d) + 6);
    g.append("circle").attr("class", "body").attr("r", radius);
    g.append("text")
      .attr("class", "label")
      .attr("text-anchor", "middle")
      .attr("dy", (d) => radius(d) + 14);
    g.append("text")
      .attr("class", "wait-text")
      .attr("text-anchor", "middle")
      .attr("dy", (d) => -(radius(d) + 10))
      .text("waiting for you");
    g.on("pointerenter", showTip).on("pointermove", moveTip).on("pointerleave", hideTip);
    g.transition("fade").duration(SPAWN_MS).style("opacity", 1);
    return g;
  }

  function labelOf(d) {
    if (d.agentId !== MAIN) return truncate(d.agentType, 28);
    return d.project ? truncate(d.project.split("/").filter(Boolean).pop(), 28) : "main";
  }

  function ticked() {
    linkSel
      .attr("x1", (l) => l.source.x)
      .attr("y1", (l) => l.source.y)
      .attr("x2", (l) => l.target.x)
      .attr("y2", (l) => l.target.y);
    nodeSel.attr("transform", (d) => `translate(${d.x},${d.y})`);
  }

  // Effects are drawn once per frame, after update() has created the nodes they refer to.
  function play(effects) {
    const now = performance.now();
    for (const e of effects) {
      const el = elements.get(e.id);
      if (!el) continue;
      if (e.type === "pulse") {
        el.dataset.pulses = Number(el.dataset.pulses) + 1;
        pulse(el, e, now);
        floatLabel(el, e.label, e.skill ? "floater skill" : "floater");
      } else if (e.type === "fail") {
        el.dataset.fails = Number(el.dataset.fails) + 1;
        pulse(el, e, now);
        failRing(el);
        floatLabel(el, `✕ ${e.label}`, "floater fail");
      } else if (e.type === "done") {
        flash(el, e.outcome);
      } else if (e.type === "prompt") {
        d3.select(el)
          .select(".halo")
          .transition("prompt")
          .duration(PROMPT_MS / 2)
          .attr("r", R_MAIN * 3.6)
          .transition()
          .duration(PROMPT_MS / 2)
          .attr("r", R_MAIN * 2.6);
      }
    }
  }

  function pulse(el, e, now) {
    stats.lastPulse = { id: e.id, label: e.label, at: Date.now() };
    if ((pulseUntil.get(el) ?? 0) > now) {
      stats.coalesced++;
      return;
    }
    pulseUntil.set(el, now + PULSE_MS);
    stats.pulses++;
    const r = radius(el.__data__);
    d3.select(el)
      .select(".body")
      .transition("pulse")
      .duration(PULSE_MS / 2)
      .ease(d3.easeQuadOut)
      .attr("r", r * PULSE_SCALE)
      .transition()
      .duration(PULSE_MS / 2)
      .ease(d3.easeQuadIn)
      .attr("r", r);
  }

  function failRing(el) {
    stats.fails++;
    const r = radius(el.__data__);
    d3.select(el)
      .insert("circle", ".body")
      .attr("class", "failring")
      .attr("r", r)
      .transition()
      .duration(FAIL_MS)
      .ease(d3.easeCubicOut)
      .attr("r", r * 3)
      .style("opacity", 0)
      .remove();
  }

  function floatLabel(el, text, cls) {
    if (liveLabels >= MAX_LABELS) {
      stats.labelsDropped++;
      return;
    }
    liveLabels++;
    stats.labels++;
    const d = el.__data__;
    const y = d.y - radius(d) - 6;
    floaters
      .append("text")
      .attr("class", cls)
      .attr("text-anchor", "middle")
      .attr("x", d.x)
      .attr("y", y)
      .text(text)
      .transition()
      .duration(LABEL_MS)
      .ease(d3.easeCubicOut)
      .attr("y", y - LABEL_RISE)
      .style("opacity", 0)
      .on("end", () => liveLabels--)
      .remove();
  }

  // Colour plus a written mark, so the outcome does not depend on colour alone.
  function flash(el, outcome) {
    stats.flashes++;
    const o = OUTCOMES[outcome] ?? OUTCOMES.unknown;
    const g = d3.select(el).attr("data-outcome", outcome);
    const r = radius(el.__data__);
    g.select(".body").interrupt("pulse").attr("r", r).style("fill", o.color);
    g.append("text")
      .attr("class", "outcome")
      .attr("text-anchor", "middle")
      .attr("dy", -(r + 8))
      .style("fill", o.color)
      .text(o.mark);
    g.insert("circle", ".body")
      .attr("class", "failring")
      .style("stroke", o.color)
      .attr("r", r)
      .transition()
      .duration(FLASH_MS)
      .attr("r", r * 2.4)
      .style("opacity", 0)
      .remove();
    g.transition("fade").delay(FLASH_MS).duration(FADE_MS).style("opacity", 0);
  }

  // A reset snapshot means the old drawing is meaningless: start from an empty canvas.
  function clear() {
    d3.select("#nodes").selectAll("*").interrupt().remove();
    d3.select("#links").selectAll("*").remove();
    floaters.selectAll("*").interrupt().remove();
    nodeSel = d3.select("#nodes").selectAll("g.node");
    linkSel = d3.select("#links").selectAll("line");
    elements.clear();
    pending.length = 0;
    liveLabels = 0;
    simVersion = -1;
    hideTip();
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
    if (model.rev !== drawnRev || model.version !== simVersion) update();
    if (pending.length) play(pending.splice(0));
    requestAnimationFrame(frame);
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

  // Tooltip, refreshed while shown so the age ticks.
  const tooltip = $("tooltip");
  let tipNode = null;
  function showTip(event, d) {
    tipNode = d;
    renderTip();
    tooltip.hidden = false;
    moveTip(event);
  }
  function moveTip(event) {
    const x = Math.min(event.clientX + 14, innerWidth - tooltip.offsetWidth - 8);
    const y = Math.min(event.clientY + 14, innerHeight - tooltip.offsetHeight - 8);
    tooltip.style.left = `${Math.max(4, x)}px`;
    tooltip.style.top = `${Math.max(4, y)}px`;
  }
  function hideTip() {
    tipNode = null;
    tooltip.hidden = true;
  }
  function renderTip() {
    tooltip.replaceChildren(
      ...describe(tipNode, Date.now()).map((line) => {
        const div = document.createElement("div");
        div.textContent = line;
        return div;
      }),
    );
  }

  // Connection: resume from the last applied seq; the model decides when a resync is needed.
  let socket = null;
  let attempt = 0;

  function setStatus(status) {
    stats.status = status;
    const badge = $("status");
    badge.dataset.status = status;
    badge.textContent = STATUS_TEXT[status];
  }

  function connect() {
    let ws;
    try {
      ws = new WebSocket(streamUrl(location, model.resumeParams()));
    } catch {
      retry();
      return;
    }
    socket = ws;
    ws.onopen = () => {
      // A quiet resume may bring no frame for a while: being connected is what resets the backoff.
      attempt = 0;
      stats.connects++;
      setStatus("connected");
    };
    ws.onmessage = (e) => {
      if (ws === socket) receive(e.data);
    };
    // Covers network loss, a relay restart and the relay dropping a slow viewer (4008) alike.
    ws.onclose = () => {
      if (ws !== socket) return;
      socket = null;
      retry();
    };
  }

  function receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    const result = model.receive(msg, Date.now());
    if (result.resync) {
      const ws = socket;
      socket = null; // frames still in flight on the old socket must not be applied
      ws.close(1000, "resync");
      retry();
      return;
    }
    if (result.effects[0]?.type === "reset") clear();
    if (!document.hidden && pending.length < MAX_PENDING) pending.push(...result.effects);
  }

  function retry() {
    setStatus(attempt >= DISCONNECTED_AFTER ? "disconnected" : "reconnecting");
    setTimeout(connect, backoffDelay(attempt++));
  }

  addEventListener("resize", resize);
  resize();
  setInterval(() => {
    model.sweep(Date.now());
    counters();
    if (tipNode && !model.nodes.has(tipNode.id)) hideTip();
    if (tipNode) renderTip();
  }, TICK_MS);
  requestAnimationFrame(frame);
  connect();
}
