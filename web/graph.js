// The graph drawing: the force simulation, one <g> per node keyed by id, one line per link.
// What a node shows (colour, label, waiting, compacting) comes from view() in present.js; what part of the
// layout the window shows is view.js's; tool satellites around agents are satellites.js's.
// A node can be dragged and stays where it is dropped (pinned) until it is double-clicked; one session can be
// shown alone (the others are neither drawn nor simulated).
import { MAIN } from "./model.js";
import { labelOf, sessionAnchors, view } from "./present.js";
import { createSatellites } from "./satellites.js";
import { createView } from "./view.js";

export const R = 8;
export const R_MAIN = 13;
export const SPAWN_MS = 300;
const REHEAT_ALPHA = 0.3; // gentle: nodes drift to their place instead of the whole graph jumping
const CROWDED = 60; // above this many nodes, agent-type labels show on hover only, or they overlap into noise
const LABEL_REACH = 22; // how far below its centre a node's label reaches, beyond its radius
const LABEL_CHAR = 3.3; // half the width of a label's character (11 px type), for the collision radius
const LABEL_ROOM_MAX = 60;

export const radius = (d) => (d.agentId === MAIN ? R_MAIN : R);

/**
 * The drawing of `model`: update() after the model changed, rekey() when a node changed its id,
 * clear() after a reset. `tip` gets the pointer events of every node.
 */
export function createGraph(d3, model, tip) {
  const svg = document.getElementById("graph");
  let linkSel = d3.select("#links").selectAll("line");
  let nodeSel = d3.select("#nodes").selectAll("g.node");
  const elements = new Map(); // node id -> its <g>, so effects find it without a selector
  const pinned = new WeakSet(); // nodes the person dropped somewhere: the layout leaves them there
  const listeners = { structure: [], follow: [] };
  let anchors = new Map();
  let drawnRev = -1;
  let simVersion = -1;
  let shownSession = null; // null: every session
  let filterVersion = 0;
  let drawnFilter = -1;
  let visible = []; // the nodes drawn and simulated
  let lastSession = null; // the session of the node last pressed or focused: what "focus session" shows
  let refit = null; // "now" or "animate": fit once the next update() has the nodes to fit
  let resized = false;
  const dragging = new Set(); // nodes being dragged
  const crowded = () => visible.length > CROWDED;

  const satellites = createSatellites(d3, { radius, crowded, svg });
  // How far a node's drawing reaches from its centre: its label under it, or its satellites and then its label.
  const reach = (d) => Math.max(radius(d) + LABEL_REACH, satellites.reach(d) + LABEL_REACH - 8);
  const layoutView = createView(d3, svg, document.getElementById("viewport"), {
    reach,
    onResize: () => {
      simVersion = -1; // re-anchor on the next frame
      resized = true;
    },
    onFollow: (on) => listeners.follow.forEach((fn) => fn(on)),
  });
  const size = () => layoutView.size();

  const anchorOf = (d) => anchors.get(d.sessionId) ?? { x: size().width / 2, y: size().height / 2 };
  // Room for a node: its body, and unless crowded (labels hidden) about half its label's width, or its
  // satellites' ring. Satellites do not take part in the simulation: an agent wearing them keeps its
  // neighbours further off, that is all.
  const collideRadius = (d) => {
    if (crowded()) return radius(d) + 5;
    const label = Math.min(LABEL_ROOM_MAX, labelOf(d).length * LABEL_CHAR);
    return Math.max(radius(d) + 16, label, satellites.reach(d) - 6);
  };
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
    .force("charge", d3.forceManyBody().strength(() => (crowded() ? -90 : -220)).distanceMax(320))
    .force("collide", d3.forceCollide(collideRadius))
    // A weak pull to the session's anchor keeps several sessions' clouds apart.
    .force("x", d3.forceX((d) => anchorOf(d).x).strength(0.02))
    .force("y", d3.forceY((d) => anchorOf(d).y).strength(0.02))
    .on("tick", ticked);

  const drag = d3
    .drag()
    .on("drag", function (event, d) {
      if (!dragging.has(d)) {
        // The first move, not the press: a plain click neither pins nor reheats.
        dragging.add(d);
        layoutView.hold(true);
        tip.hide();
        simulation.alphaTarget(REHEAT_ALPHA).restart();
      }
      d.fx = event.x;
      d.fy = event.y;
      pin(this, d, true);
    })
    .on("end", (event, d) => {
      if (!dragging.delete(d)) return;
      layoutView.hold(false);
      simulation.alphaTarget(0);
    });

  function pin(el, d, on) {
    if (pinned.has(d) === on) return;
    if (on) pinned.add(d);
    else pinned.delete(d);
    el.setAttribute("data-pinned", String(on));
    redraw.call(el, d); // its aria-label says so
  }

  // Double-click: back to the layout's say (an orchestrator to its session's anchor).
  function unpin(event, d) {
    event.stopPropagation(); // not the zoom's double-click
    if (!pinned.has(d)) return;
    const a = anchorOf(d);
    d.fx = d.agentId === MAIN ? a.x : null;
    d.fy = d.agentId === MAIN ? a.y : null;
    pin(this, d, false);
    simulation.alpha(Math.max(simulation.alpha(), REHEAT_ALPHA)).restart();
  }

  const shows = (d) => shownSession === null || d.sessionId === shownSession;

  // Orchestrators are pinned to their session's anchor; a newcomer starts next to its parent,
  // so it visibly radiates from the agent that spawned it.
  function place(nodes) {
    const { width, height } = size();
    anchors = sessionAnchors(shownSession === null ? model.sessions() : [shownSession], width, height);
    for (const d of nodes) {
      const a = anchorOf(d);
      if (d.agentId === MAIN && !pinned.has(d)) {
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

  const stale = () => model.rev !== drawnRev || model.version !== simVersion || filterVersion !== drawnFilter;

  function update() {
    drawnRev = model.rev;
    const structural = model.version !== simVersion || filterVersion !== drawnFilter;
    if (structural) {
      if (shownSession !== null && !model.sessions().includes(shownSession)) {
        shownSession = null; // it ended: back to every session
        refit = "animate";
      }
      if (resized && layoutView.following()) refit ??= "now";
      resized = false;
      simVersion = model.version;
      drawnFilter = filterVersion;
      visible = [];
      for (const d of model.nodes.values()) if (shows(d)) visible.push(d);
      place(visible);
      const links = model.links().filter((l) => shows(l.target));
      simulation.nodes(visible);
      simulation.force("link").links(links);
      simulation.force("collide").radius(collideRadius); // crowdedness may have changed
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
      nodeSel = nodeSel.data(visible, (d) => d.id).join(enterNode, undefined, (exit) =>
        exit
          .each(function (d) {
            if (elements.get(d.id) === this) elements.delete(d.id);
          })
          .remove(),
      );
      svg.classList.toggle("crowded", crowded());
    }
    // A ring that grew keeps neighbours further off, unless crowded (then rings do not count: see collideRadius).
    if (satellites.update(elements) && !crowded()) {
      simulation.force("collide").radius(collideRadius);
      simulation.alpha(Math.max(simulation.alpha(), 0.1)).restart();
    }
    nodeSel.each(redraw);
    if (refit) {
      layoutView.fit(visible, refit === "animate");
      refit = null;
    }
    // Positions move only with the simulation (or a new node placed): an update that changed no structure
    // rewrites none of them, so the browser repaints only what changed.
    if (structural) {
      ticked();
      listeners.structure.forEach((fn) => fn());
    }
  }

  // Attributes tests and CSS read, and the texts, from what the model says the node shows.
  function redraw(d) {
    const v = view(d);
    this.setAttribute("data-state", v.state);
    this.setAttribute("data-model-family", v.family);
    this.setAttribute("data-waiting", v.waiting);
    const label = this.querySelector(".label");
    const waitText = this.querySelector(".wait-text");
    setText(label, v.label);
    setText(waitText, v.waitText);
    // With satellites round it, the node's own texts move out of their ring.
    const ring = satellites.reach(d);
    setAttr(label, "dy", Math.max(radius(d) + 14, ring + 6));
    setAttr(waitText, "dy", -Math.max(radius(d) + 10, ring - 4));
    if (d.agentId === MAIN) this.setAttribute("data-compacting", String(v.compacting));
    setAttr(this, "aria-label", spoken(d, v));
  }

  function setAttr(el, name, value) {
    const text = String(value);
    if (el && el.getAttribute(name) !== text) el.setAttribute(name, text);
  }

  // What a screen reader says of a node: the full texts the drawing truncates.
  function spoken(d, v) {
    const main = d.agentId === MAIN;
    const parts = [`${main ? "orchestrator" : d.agentType} ${d.model ?? "model unknown"}`];
    if (main && d.project) parts.push(`project ${d.project}`);
    if (!main && d.description) parts.push(d.description);
    if (d.state === "done") parts.push(`finished: ${d.outcome}`);
    else parts.push(v.waitText || "running");
    parts.push(`${d.toolCount} tool calls`);
    if (satellites.shown() && d.tools?.size) parts.push(toolsSpoken(d));
    if (pinned.has(d)) parts.push("pinned");
    return parts.join(", ");
  }

  // "tools: Bash 12, Read 3", rebuilt only when the node made a call: this runs for every node on every frame.
  const spokenTools = new WeakMap(); // node -> [toolCount, text]
  function toolsSpoken(d) {
    const cached = spokenTools.get(d);
    if (cached && cached[0] === d.toolCount && cached[2] === d.tools.size) return cached[1];
    const text = `tools: ${[...d.tools].map(([tool, n]) => `${tool} ${n}`).join(", ")}`;
    spokenTools.set(d, [d.toolCount, text, d.tools.size]);
    return text;
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
      .attr("data-pinned", (d) => String(pinned.has(d)))
      .attr("tabindex", 0)
      .attr("role", "button")
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
    // The pin mark: a small head and needle at the node's upper right, shown while pinned.
    const mark = g
      .append("g")
      .attr("class", "pin")
      .attr("transform", (d) => `translate(${radius(d) * 0.75},${-radius(d) * 0.75})`);
    mark.append("line").attr("x1", 0).attr("y1", 0).attr("x2", -3).attr("y2", 3);
    mark.append("circle").attr("r", 2.6);
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
    g.on("pointerdown.session", (event, d) => (lastSession = d.sessionId));
    g.on("dblclick", unpin).on("focus", focused).on("blur", tip.hide).on("keydown", pressed);
    g.call(drag);
    g.transition("fade").duration(SPAWN_MS).style("opacity", 1);
    return g;
  }

  // A keyboard focus: say what the node is where it is, and bring it into view.
  function focused(event, d) {
    lastSession = d.sessionId;
    if (!this.matches(":focus-visible")) return;
    layoutView.reveal(d);
    const box = this.querySelector(".body").getBoundingClientRect();
    tip.show({ clientX: box.right, clientY: box.bottom }, d);
  }

  // role=button: Enter and Space press it, as a click would.
  function pressed(event) {
    if (event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault();
    this.dispatchEvent(new MouseEvent("click", { bubbles: true }));
  }

  function ticked() {
    linkSel
      .attr("x1", (l) => l.source.x)
      .attr("y1", (l) => l.source.y)
      .attr("x2", (l) => l.target.x)
      .attr("y2", (l) => l.target.y);
    nodeSel.attr("transform", (d) => `translate(${d.x},${d.y})`);
    satellites.moved();
    layoutView.follow(visible);
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
    satellites.clear();
    simVersion = -1;
  }

  /** Show one session (its id) or every session (null); the view fits what is shown. */
  function showSession(sessionId) {
    if (sessionId === shownSession) return;
    shownSession = sessionId;
    filterVersion++;
    refit = "animate";
  }

  /** The session "focus session" shows: the last one pressed or focused, else the one shown, else the first. */
  function focusTarget() {
    const sessions = new Set(visible.map((d) => d.sessionId));
    if (lastSession !== null && sessions.has(lastSession)) return lastSession;
    return shownSession ?? sessions.values().next().value ?? null;
  }

  function focusSession(sessionId = focusTarget()) {
    if (sessionId === null) return null;
    layoutView.focus(visible.filter((d) => d.sessionId === sessionId));
    return sessionId;
  }

  function showTools(on) {
    if (satellites.show(on)) drawnRev = -1;
  }

  addEventListener("resize", layoutView.resize);
  return {
    update,
    stale,
    rekey,
    clear,
    element: (id) => elements.get(id),
    /** The view: fit(), focusSession(), the session shown, tool satellites, keyboard pan and zoom. */
    fit: () => layoutView.fit(visible),
    focusSession,
    focusTarget,
    showSession,
    shownSession: () => shownSession,
    showTools,
    toolsShown: () => satellites.shown(),
    panBy: layoutView.panBy,
    zoomBy: layoutView.zoomBy,
    following: layoutView.following,
    on: (type, fn) => listeners[type].push(fn),
  };
}
