// Tool satellites: around each agent, one small circle per tool it used, sized by its calls and labelled
// ("Bash ×12"), pulsing when that tool is called again. Counts come from the model's node.tools (tool -> calls).
//
// Satellites are no bodies of the simulation: they sit on a fixed ring around their agent and push nothing.
// A few agents get labelled SVG satellites inside their <g>, so the agent's own transform places them on every
// tick at no cost. A crowd (hundreds of agents, thousands of satellites, unlabelled like the agents' own
// labels) is painted on one canvas over the graph, in one fill per frame: as SVG elements they cost the
// browser a repaint of each of them on every frame that anything moves.
import { truncate } from "./model.js";

const SAT_MIN = 3.5; // radius of a satellite with one call
const SAT_MAX = 8; // and with SAT_FULL calls or more (sqrt scale, capped)
const SAT_FULL = 40;
const CROWDED_SCALE = 0.7; // a crowd gets smaller satellites
const GAP = 19; // arc length per satellite on its ring
const RING_GAP = 12; // between the agent's edge and its ring
const MAX_SHOWN = 12; // beyond this many tools, the least used are summed into one "others" satellite
const NAME_MAX = 18;
const PULSE_MS = 400;
const PULSE_SCALE = 1.8;
const LABEL_ROOM = 12; // a satellite label's height, below the ring: the agent's own label goes under it
const FILL = "#a5b4fc";
const RESIZE_MS = 250; // a crowd's canvas shows new counts at most this often when nothing moves
const OTHERS = "\u0000others"; // the key of the summed satellite; no tool is named so

/**
 * `radius(d)` is an agent's radius, `crowded()` whether the graph is crowded, `svg` the graph's <svg>.
 * update(elements) draws the satellites of every drawn agent (id -> its <g>); moved() after positions changed.
 */
export function createSatellites(d3, { radius, crowded, svg }) {
  let shown = false;
  let states = new WeakMap(); // node -> {el, group, small, items: Map(tool -> item), ring}
  let drawnNodes = []; // the crowd's agents with satellites, for the canvas
  let drawnSize = -1; // how many agents were drawn at the last update
  let changes = 0; // satellites added or resized by the current update
  const size = d3.scaleSqrt().domain([1, SAT_FULL]).range([SAT_MIN, SAT_MAX]).clamp(true);
  const canvas = createCanvas(d3, svg, () => drawnNodes, states);

  /** Turn the satellites on or off; true when that changed something. */
  function show(on) {
    if (on === shown) return false;
    shown = on;
    svg.classList.toggle("tools-shown", on);
    if (!on) clear();
    return true;
  }

  // Drop every satellite; the next update() builds them again from the counts.
  function clear() {
    d3.select(svg).selectAll("g.sats").interrupt().remove();
    states = new WeakMap();
    canvas.states = states;
    drawnNodes = [];
    canvas.stop();
    svg.dataset.satellites = "0";
  }

  /** Draw or refresh the satellites of each agent; true when some ring changed size (the layout's spacing). */
  function update(elements) {
    if (!shown) return false;
    const small = crowded();
    let rings = false;
    let count = 0;
    changes = 0;
    drawnNodes = [];
    for (const el of elements.values()) {
      const d = el.__data__;
      if (!d || !(d.tools instanceof Map) || !d.tools.size) continue;
      rings = sync(el, d, small) || rings;
      count += states.get(d).items.size;
      if (small) drawnNodes.push(d);
    }
    if (svg.dataset.satellites !== String(count)) svg.dataset.satellites = String(count);
    if (!small) canvas.stop();
    else if (changes || elements.size !== drawnSize) canvas.start();
    drawnSize = elements.size;
    return rings;
  }

  function sync(el, d, small) {
    let state = states.get(d);
    const fresh = !state || state.el !== el || state.small !== small;
    if (fresh) {
      state?.group?.remove();
      // Few agents: labelled SVG inside the agent's <g>, under its body. A crowd: only numbers, for the canvas.
      const group = small ? null : d3.select(el).insert("g", ".ring").attr("class", "sats").node();
      state = { el, group, small, items: new Map(), ring: 0 };
      states.set(d, state);
    }
    if (!fresh && unchanged(state.items, d.tools)) return false; // the common case, every frame: no allocation
    const entries = shownEntries(d.tools);
    const now = performance.now();
    let added = false;
    for (const [tool, count] of entries) {
      let item = state.items.get(tool);
      if (!item) {
        item = { el, count: fresh ? null : 0, r: SAT_MIN, x: 0, y: 0, until: 0, pulses: 0 };
        if (state.group) Object.assign(item, svgItem(d3, state.group, tool));
        state.items.set(tool, item);
        added = true; // a tool seen for the first time after the satellites were drawn is a call: it pulses too
      }
      if (item.count === count) continue;
      changes++;
      const more = item.count !== null && count > item.count;
      item.count = count;
      item.r = size(count) * (small ? CROWDED_SCALE : 1);
      if (item.g) {
        item.circle.setAttribute("r", item.r);
        item.g.dataset.count = count;
        const name = tool === OTHERS ? `+${d.tools.size - MAX_SHOWN + 1} others` : truncate(tool, NAME_MAX);
        item.text.textContent = `${name} ×${count}`;
      }
      if (more) pulse(item, now);
    }
    if (!added && state.items.size === entries.length) return false;
    for (const [tool, item] of state.items) {
      if (!entries.some(([name]) => name === tool)) {
        item.g?.remove();
        state.items.delete(tool);
      }
    }
    const before = state.ring;
    layout(state, d, entries, small);
    return state.ring !== before;
  }

  // The satellites evenly round a ring just outside the agent, the first to its right; labels point outwards.
  function layout(state, d, entries, small) {
    const n = entries.length;
    const ring = Math.max(radius(d) + (small ? RING_GAP / 2 : RING_GAP), (n * GAP * (small ? 0.6 : 1)) / (2 * Math.PI));
    state.ring = ring;
    entries.forEach(([tool], i) => {
      const item = state.items.get(tool);
      const angle = (2 * Math.PI * i) / n;
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      item.x = ring * cos;
      item.y = ring * sin;
      if (!item.g) return;
      item.g.setAttribute("transform", `translate(${item.x.toFixed(1)},${item.y.toFixed(1)})`);
      const out = SAT_MAX + 3;
      item.text.setAttribute("x", (out * cos).toFixed(1));
      item.text.setAttribute("y", (out * sin + 3).toFixed(1));
      item.text.setAttribute("text-anchor", cos > 0.3 ? "start" : cos < -0.3 ? "end" : "middle");
    });
  }

  // Calls landing while a pulse runs share it, as the agents' own pulses do.
  function pulse(item, now) {
    item.pulses++;
    if (item.g) item.g.dataset.pulses = item.pulses;
    if (item.until > now || document.hidden) return;
    item.until = now + PULSE_MS;
    if (!item.g) {
      // A crowd's satellite is paint on the canvas, which repaints only when things move: its pulse is a ring
      // of its own in the agent's <g>, gone when it ends.
      d3.select(item.el)
        .insert("circle", ".body")
        .attr("class", "sat-pulse")
        .attr("cx", item.x)
        .attr("cy", item.y)
        .attr("r", item.r)
        .transition()
        .duration(PULSE_MS)
        .ease(d3.easeQuadOut)
        .attr("r", item.r * PULSE_SCALE)
        .style("opacity", 0)
        .remove();
      return;
    }
    d3.select(item.circle)
      .transition()
      .duration(PULSE_MS / 2)
      .ease(d3.easeQuadOut)
      .attr("r", item.r * PULSE_SCALE)
      .transition()
      .duration(PULSE_MS / 2)
      .ease(d3.easeQuadIn)
      .attr("r", () => item.r);
  }

  /** How far an agent's satellites and their labels reach from its centre (0 without satellites). */
  function reach(d) {
    const state = shown ? states.get(d) : undefined;
    if (!state || !state.items.size) return 0;
    return state.ring + SAT_MAX + (state.small ? 0 : LABEL_ROOM);
  }

  return { show, shown: () => shown, update, clear, reach, moved: canvas.moved };
}

function svgItem(d3, group, tool) {
  const g = d3.select(group).append("g").attr("class", "sat").attr("data-tool", tool).attr("data-pulses", 0);
  const circle = g.append("circle").attr("class", "sat-body").node();
  const text = g.append("text").attr("class", "sat-label").node();
  return { g: g.node(), circle, text };
}

// The crowd's canvas: over the graph, under the page's panels, never in the pointer's way. It repaints on a
// frame only when something moved (the layout, the view, a count).
function createCanvas(d3, svg, nodes, initialStates) {
  const canvas = document.createElement("canvas");
  canvas.id = "satellites";
  canvas.setAttribute("aria-hidden", "true");
  canvas.hidden = true;
  svg.after(canvas);
  const ctx = canvas.getContext("2d");
  const self = { states: initialStates, start, stop, moved };
  let frame = null;
  let dirty = true; // something moved: repaint on the next frame
  let stale = false; // counts changed: repaint soon (sizes need not follow every call within the frame)
  let paintedAt = -Infinity;
  let last = null; // the view transform painted last

  /** Counts or agents changed; starts the painting loop if it was stopped. */
  function start() {
    stale = true;
    if (frame === null) {
      dirty = true;
      canvas.hidden = false;
      frame = requestAnimationFrame(paint);
    }
  }

  function stop() {
    if (frame !== null) cancelAnimationFrame(frame);
    frame = null;
    canvas.hidden = true;
  }

  function moved() {
    dirty = true;
  }

  function paint(now) {
    frame = requestAnimationFrame(paint);
    const t = d3.zoomTransform(svg);
    const dpr = devicePixelRatio || 1;
    const width = Math.round(innerWidth * dpr);
    const height = Math.round(innerHeight * dpr);
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
      dirty = true;
    }
    const viewMoved = !last || last.k !== t.k || last.x !== t.x || last.y !== t.y;
    if (!dirty && !viewMoved && !(stale && now - paintedAt >= RESIZE_MS)) return;
    dirty = false;
    stale = false;
    paintedAt = now;
    last = t;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.setTransform(dpr * t.k, 0, 0, dpr * t.k, dpr * t.x, dpr * t.y);
    ctx.fillStyle = FILL;
    ctx.globalAlpha = 0.85;
    // One path and one fill for every satellite.
    ctx.beginPath();
    for (const d of nodes()) {
      const state = self.states.get(d);
      if (!state || d.state === "done") continue;
      for (const item of state.items.values()) {
        ctx.moveTo(d.x + item.x + item.r, d.y + item.y);
        ctx.arc(d.x + item.x, d.y + item.y, item.r, 0, 2 * Math.PI);
      }
    }
    ctx.fill();
  }

  return self;
}

function unchanged(items, tools) {
  if (tools.size > MAX_SHOWN || tools.size !== items.size) return false;
  for (const [tool, count] of tools) if (items.get(tool)?.count !== count) return false;
  return true;
}

// The tools to draw: all of them, or the MAX_SHOWN - 1 most called (in first-use order) and the rest summed.
function shownEntries(tools) {
  if (tools.size <= MAX_SHOWN) return [...tools];
  const top = new Set(
    [...tools]
      .sort((a, b) => b[1] - a[1])
      .slice(0, MAX_SHOWN - 1)
      .map(([tool]) => tool),
  );
  let others = 0;
  const entries = [];
  for (const [tool, count] of tools) {
    if (top.has(tool)) entries.push([tool, count]);
    else others += count;
  }
  entries.push([OTHERS, others]);
  return entries;
}
