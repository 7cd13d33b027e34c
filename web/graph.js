// The graph drawing: the force simulation, one <g> per node keyed by id, one line per link.
// What a node shows (colour, label, waiting, compacting) comes from view() in present.js.
import { MAIN } from "./model.js";
import { sessionAnchors, view } from "./present.js";

export const R = 8;
export const R_MAIN = 13;
export const SPAWN_MS = 300;
const REHEAT_ALPHA = 0.3; // gentle: nodes drift to their place instead of the whole graph jumping
const CROWDED = 60; // above this many nodes, agent-type labels show on hover only, or they overlap into noise

export const radius = (d) => (d.agentId === MAIN ? R_MAIN : R);

/**
 * The drawing of `model`: update() after the model changed, rekey() when a node changed its id,
 * clear() after a reset. `tip` gets the pointer events of every node.
 */
export function createGraph(d3, model, tip) {
  let linkSel = d3.select("#links").selectAll("line");
  let nodeSel = d3.select("#nodes").selectAll("g.node");
  const elements = new Map(); // node id -> its <g>, so effects find it without a selector
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

  const stale = () => model.rev !== drawnRev || model.version !== simVersion;

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
      // Keyed by the child's id, read from the node object: a re-keyed node keeps its line.
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
    nodeSel = nodeSel.data(nodes, (d) => d.id).join(enterNode, undefined, (exit) =>
      exit
        .each(function (d) {
          if (elements.get(d.id) === this) elements.delete(d.id);
        })
        .remove(),
    );
    nodeSel.each(redraw);
    d3.select("#graph").classed("crowded", nodes.length > CROWDED);
    ticked();
  }

  // Attributes tests and CSS read, and the texts, from what the model says the node shows.
  function redraw(d) {
    const v = view(d);
    this.setAttribute("data-state", v.state);
    this.setAttribute("data-model-family", v.family);
    this.setAttribute("data-waiting", v.waiting);
    setText(this.querySelector(".label"), v.label);
    setText(this.querySelector(".wait-text"), v.waitText);
    if (d.agentId === MAIN) this.setAttribute("data-compacting", String(v.compacting));
  }

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
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
    const main = g.filter((d) => d.agentId === MAIN);
    main
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
      .attr("dy", (d) => -(radius(d) + 10));
    main
      .append("text")
      .attr("class", "compact-text")
      .attr("text-anchor", "middle")
      .attr("dy", R_MAIN + 27)
      .text("compacting…");
    g.on("pointerenter", tip.show).on("pointermove", tip.move).on("pointerleave", tip.hide);
    g.transition("fade").duration(SPAWN_MS).style("opacity", 1);
    return g;
  }

  function ticked() {
    linkSel
      .attr("x1", (l) => l.source.x)
      .attr("y1", (l) => l.source.y)
      .attr("x2", (l) => l.target.x)
      .attr("y2", (l) => l.target.y);
    nodeSel.attr("transform", (d) => `translate(${d.x},${d.y})`);
  }

  /**
   * The node drawn as `from` is now `to`: the same <g> (position, counters, no fade-in) under its new id.
   * Called when the message arrives, so effects queued meanwhile find it. The node object already
   * carries the new id, so the next keyed join matches the same <g> and the same line.
   */
  function rekey(from, to) {
    const el = elements.get(from);
    if (!el) return; // not drawn yet: the next update() draws it under its new id
    const apart = elements.get(to);
    if (apart && apart !== el) {
      // The real id was drawn apart before the re-key; the model folded it into this node.
      const ghost = apart.__data__;
      d3.select(apart).interrupt().remove();
      linkSel.filter((l) => l.target === ghost).remove();
      // Select again, so the next join cannot match the removed elements by their (equal) key.
      nodeSel = d3.select("#nodes").selectAll("g.node");
      linkSel = d3.select("#links").selectAll("line");
    }
    elements.delete(from);
    elements.set(to, el);
    el.setAttribute("data-id", to);
  }

  // A reset snapshot means the old drawing is meaningless: start from an empty canvas.
  function clear() {
    d3.select("#nodes").selectAll("*").interrupt().remove();
    d3.select("#links").selectAll("*").remove();
    nodeSel = d3.select("#nodes").selectAll("g.node");
    linkSel = d3.select("#links").selectAll("line");
    elements.clear();
    simVersion = -1;
  }

  addEventListener("resize", resize);
  resize();
  return { update, stale, rekey, clear, element: (id) => elements.get(id) };
}
