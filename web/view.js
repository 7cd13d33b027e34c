// What part of the graph the window shows: zoom and pan (d3.zoom: the wheel, a drag on the background, a pinch),
// fitting nodes into the window, and following the graph as it grows.
//
// The layout works in layout units: a window of LAYOUT_W x LAYOUT_H at the base scale, which grows with the
// window up to BASE_MAX so a 4K screen shows the same picture larger, not smaller. The zoom transform maps
// layout units to screen pixels; at k = base nothing is zoomed.
//
// Until the person moves the view it follows the graph: each tick it eases towards the fit of every visible
// node, centred on the layout's centre (where sessions are anchored), never zooming in past the base scale.
// A wheel, drag, pinch or key takes the view over and following stops; fit() brings it back.

const LAYOUT_W = 1280;
const LAYOUT_H = 720;
const BASE_MAX = 2.5;
const ZOOM_MIN = 0.05; // times the base scale
const ZOOM_MAX = 8;
const FOCUS_MAX = 2; // a focused session is shown at most this much larger than the base scale
const FIT_MS = 500;
const FOLLOW_EASE = 0.2; // share of the way to the fit covered per tick while following
const MARGIN = 28; // screen pixels kept clear around fitted nodes
const KEY_PAN = 0.12; // share of the window an arrow key pans
const KEY_ZOOM = 1.25;
const OURS = { type: "view" }; // the source event of the view's own changes

/**
 * `svg` gets the zoom behaviour, `viewport` (its <g>) the transform. `reach(d)` is how far a node's drawing
 * extends from its centre, in layout units. `onResize()` hears a new layout size; `onFollow(following)`
 * hears the follow state change.
 */
export function createView(d3, svg, viewport, { reach, onResize = () => {}, onFollow = () => {} }) {
  const root = d3.select(svg);
  let base = 1;
  let width = LAYOUT_W; // layout units
  let height = LAYOUT_H;
  let following = true;
  let animating = false; // a fit transition is running: following waits for its end
  let runs = 0; // fits started
  let held = 0; // drags in progress: the view holds still under the pointer

  // A press on a node starts its drag (graph.js), which stops the event before it reaches the zoom.
  const zoom = d3.zoom().on("zoom", zoomed);

  let shown = null; // the transform applied last
  function zoomed(event) {
    const t = event.transform;
    const moved = !shown || t.k !== shown.k || t.x !== shown.x || t.y !== shown.y;
    shown = t;
    viewport.setAttribute("transform", t.toString());
    // The person's gestures carry their input event; ours carry OURS (d3 lends a running gesture's event to
    // any change made during it, so "no event" cannot tell them apart).
    if (event.sourceEvent && event.sourceEvent !== OURS && moved) setFollow(false);
  }

  function setFollow(on) {
    if (following === on) return;
    following = on;
    svg.dataset.follow = String(on);
    onFollow(on);
  }

  const current = () => d3.zoomTransform(svg);
  const transform = (k, x, y) => d3.zoomIdentity.translate(x, y).scale(k);
  const screen = () => ({ w: innerWidth, h: innerHeight });

  function resize() {
    insets.at = -Infinity;
    base = Math.min(BASE_MAX, Math.max(1, Math.min(innerWidth / LAYOUT_W, innerHeight / LAYOUT_H)));
    width = innerWidth / base;
    height = innerHeight / base;
    zoom
      .extent([
        [0, 0],
        [innerWidth, innerHeight],
      ])
      .scaleExtent([base * ZOOM_MIN, base * ZOOM_MAX]);
    onResize();
  }

  // Bounds of the nodes' drawings in layout units, or null for none.
  function bounds(nodes) {
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -Infinity;
    let y1 = -Infinity;
    for (const d of nodes) {
      if (!Number.isFinite(d.x) || !Number.isFinite(d.y)) continue;
      const r = reach(d);
      x0 = Math.min(x0, d.x - r);
      y0 = Math.min(y0, d.y - r);
      x1 = Math.max(x1, d.x + r);
      y1 = Math.max(y1, d.y + r);
    }
    return x0 === Infinity ? null : { x0, y0, x1, y1 };
  }

  // The page's bars over the top and bottom of the graph (the header; the counters and toolbar), as the
  // panels measure them into CSS variables; read at most once a second, since reading styles costs.
  let insets = { y: MARGIN, at: -Infinity };
  function marginY() {
    const now = performance.now();
    if (now - insets.at > 1000) {
      const style = getComputedStyle(document.documentElement);
      const top = parseFloat(style.getPropertyValue("--panels-top")) || 0;
      const bottom = parseFloat(style.getPropertyValue("--panels-bottom")) || 0;
      insets = { y: Math.min(innerHeight / 4, Math.max(MARGIN, top, bottom)), at: now };
    }
    return insets.y;
  }

  /** Every node in view, centred on the layout's centre, at most at the base scale. */
  function fitAll(nodes) {
    const { w, h } = screen();
    const cx = width / 2;
    const cy = height / 2;
    let k = base;
    const b = bounds(nodes);
    if (b) {
      const halfW = Math.max(cx - b.x0, b.x1 - cx, 1);
      const halfH = Math.max(cy - b.y0, b.y1 - cy, 1);
      k = Math.min(base, (w / 2 - MARGIN) / halfW, (h / 2 - marginY()) / halfH);
    }
    k = Math.max(k, base * ZOOM_MIN);
    return transform(k, w / 2 - k * cx, h / 2 - k * cy);
  }

  /** These nodes filling the window, centred on them, at most FOCUS_MAX times the base scale. */
  function fitAround(nodes) {
    const b = bounds(nodes);
    if (!b) return fitAll(nodes);
    const { w, h } = screen();
    const k = Math.max(
      base * ZOOM_MIN,
      Math.min(base * FOCUS_MAX, (w - 2 * MARGIN) / (b.x1 - b.x0 || 1), (h - 2 * marginY()) / (b.y1 - b.y0 || 1)),
    );
    return transform(k, w / 2 - (k * (b.x0 + b.x1)) / 2, h / 2 - (k * (b.y0 + b.y1)) / 2);
  }

  function go(t, animate) {
    const run = ++runs;
    if (!animate || document.hidden) {
      animating = false;
      svg.dataset.fitting = "false";
      root.call(zoom.transform, t, null, OURS); // interrupts a running fit
      return;
    }
    animating = true;
    svg.dataset.fitting = "true";
    // Unnamed, so a wheel or drag (which interrupt the unnamed transition) stops it.
    root
      .transition()
      .duration(FIT_MS)
      .ease(d3.easeCubicInOut)
      .call(zoom.transform, t, null, OURS)
      .on("end interrupt", () => {
        if (run !== runs) return; // the previous fit, interrupted by this one
        animating = false;
        svg.dataset.fitting = "false";
      });
  }

  /** Show every node of `nodes` and follow the graph from now on. */
  function fit(nodes, animate = true) {
    setFollow(true);
    go(fitAll(nodes), animate);
  }

  /** Show `nodes` (one session) as large as fits; the person has chosen what to look at: no following. */
  function focus(nodes, animate = true) {
    setFollow(false);
    go(fitAround(nodes), animate);
  }

  // Called on every simulation tick: while following, ease towards the fit so a growing graph stays in view.
  function follow(nodes) {
    if (!following || animating || held) return;
    const from = current();
    const to = fitAll(nodes);
    if (Math.abs(to.k - from.k) < 1e-3 * base && Math.abs(to.x - from.x) < 0.5 && Math.abs(to.y - from.y) < 0.5) {
      return;
    }
    const k = from.k + (to.k - from.k) * FOLLOW_EASE;
    // Keep the layout's centre on the window's centre at every step, as the fit does.
    const t = transform(k, innerWidth / 2 - (k * width) / 2, innerHeight / 2 - (k * height) / 2);
    root.call(zoom.transform, t, null, OURS);
  }

  /** Arrow keys: pan by a share of the window, in screen pixels. */
  function panBy(dx, dy) {
    setFollow(false);
    const t = current();
    go(t.translate((dx * KEY_PAN * innerWidth) / t.k, (dy * KEY_PAN * innerHeight) / t.k), true);
  }

  /** +/-: zoom about the window's centre; steps > 0 zoom in. */
  function zoomBy(steps) {
    setFollow(false);
    runs++;
    animating = false;
    svg.dataset.fitting = "false";
    zoom.scaleBy(root, KEY_ZOOM ** steps, [innerWidth / 2, innerHeight / 2], OURS);
  }

  /** Bring a node into view (a keyboard focus landed on it) without changing the zoom. */
  function reveal(d) {
    const t = current();
    const [sx, sy] = t.apply([d.x, d.y]);
    if (sx > MARGIN && sx < innerWidth - MARGIN && sy > MARGIN && sy < innerHeight - MARGIN) return;
    setFollow(false);
    go(transform(t.k, innerWidth / 2 - t.k * d.x, innerHeight / 2 - t.k * d.y), true);
  }

  function hold(on) {
    held = Math.max(0, held + (on ? 1 : -1));
  }

  root.call(zoom);
  svg.dataset.follow = "true";
  svg.dataset.fitting = "false"; // "true" while a fit, focus or keyboard pan animates
  resize();
  root.call(zoom.transform, transform(base, 0, 0), null, OURS);

  return {
    resize,
    fit,
    focus,
    follow,
    panBy,
    zoomBy,
    reveal,
    hold,
    size: () => ({ width, height }),
    following: () => following,
    transform: current,
  };
}
