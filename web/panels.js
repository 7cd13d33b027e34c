// The panels around the graph (issue 11): the inspector, the activity feed, the session header and the cost
// labels, built and fed in one place so app.js stays wiring. Each part is its own module.
import { createCostToggle } from "./costs.js";
import { createFeed } from "./feed.js";
import { createHeader } from "./header.js";
import { createInspector } from "./inspector.js";

/** Call receive(msg, result) after each frame the model took, drawn() after the graph redrew, tick() on a timer. */
export function createPanels(model, graph) {
  const $ = (id) => document.getElementById(id);
  const inspector = createInspector(model, graph, $("inspector"));
  const feed = createFeed(model, $("feed"));
  const header = createHeader(model, $("session-header"), (node) => inspector.select(node));
  const costs = createCostToggle(model, $("cost-toggle"), $("graph"));
  keepClear($);
  return {
    receive: feed.receive,
    drawn: costs.draw,
    tick() {
      inspector.refresh();
      header.refresh();
    },
  };
}

// The panels stay clear of the header, the status badge, the share banner, the graph toolbar, the counters and the
// replay timeline, whose heights change with the window and their contents: CSS reads the edges from these variables.
function keepClear($) {
  const root = document.documentElement.style;
  const place = () => {
    const bottomOf = (id) => ($(id) && !$(id).hidden ? $(id).getBoundingClientRect().bottom : 0);
    const top = Math.max(bottomOf("top"), bottomOf("status"), bottomOf("share"));
    const topOf = (id) => ($(id) && !$(id).hidden ? $(id).getBoundingClientRect().top : innerHeight);
    const footer = Math.min(topOf("counters"), topOf("timeline"));
    const toolbar = Math.min(topOf("toolbar"), footer);
    set("--panels-top", `${Math.ceil(top + 8)}px`);
    set("--panels-bottom", `${Math.ceil(innerHeight - footer + 8)}px`);
    set("--feed-bottom", `${Math.ceil(innerHeight - toolbar + 6)}px`);
  };
  // A custom property on the root restyles the whole page: set only what changed.
  const set = (name, value) => {
    if (root.getPropertyValue(name) !== value) root.setProperty(name, value);
  };
  const watch = new ResizeObserver(place);
  for (const id of ["top", "status", "share", "counters", "toolbar", "timeline"]) if ($(id)) watch.observe($(id));
  addEventListener("resize", place);
  place();
}
