// Animations for the model's effects: pulses, failures, outcome flashes, the prompt halo.
// Effects wait in a queue and are drawn once per frame, after the graph has created the nodes they name.
import { LEAVE_MS } from "./model.js";
import { R_MAIN, radius } from "./graph.js";

const PULSE_SCALE = 1.5; // 8 -> 12 -> 8
const PULSE_MS = 400;
const FLASH_MS = 300;
const FADE_MS = LEAVE_MS - FLASH_MS; // 800: the model drops the node when the fade ends
const FAIL_MS = 600;
const PROMPT_MS = 900;
const LABEL_MS = 800;
const LABEL_RISE = 30;
const MAX_LABELS = 30; // floating labels at once; beyond that they are skipped, pulses still show
const MAX_PENDING = 2000; // effects waiting for a frame; a hidden tab gets no frames
const OUTCOMES = {
  success: { color: "#22c55e", mark: "✓ done" },
  failure: { color: "#ef4444", mark: "✕ failed" },
  partial: { color: "#f59e0b", mark: "◐ partial" },
  lost: { color: "#6b7280", mark: "⌀ lost" },
  unknown: { color: "#64748b", mark: "? unknown" },
  ended: { color: "#64748b", mark: "■ ended" },
};

/** `element(id)` finds a node's <g>; `stats` gets the counters tests read. */
export function createEffects(d3, element, stats) {
  const floaters = d3.select("#floaters");
  const pulseUntil = new WeakMap(); // <g> -> end of its running pulse; calls before then coalesce
  let pending = [];
  let liveLabels = 0;

  // A hidden tab gets no frames: its effects are dropped rather than played in a burst on return.
  function queue(effects) {
    if (!document.hidden && pending.length < MAX_PENDING) pending.push(...effects);
  }

  // Effects queued under a node's stand-in id play on the node under its real id.
  function rekey(from, to) {
    for (const e of pending) if (e.id === from) e.id = to;
  }

  function play() {
    if (!pending.length) return;
    const effects = pending;
    pending = [];
    const now = performance.now();
    for (const e of effects) {
      const el = element(e.id);
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

  function clear() {
    floaters.selectAll("*").interrupt().remove();
    pending = [];
    liveLabels = 0;
  }

  return { queue, rekey, play, clear };
}
