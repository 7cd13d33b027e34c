// The view's controls: which sessions are shown, fit, focus session, zoom, tool satellites; and the keys
// that do the same (arrows pan, + and - zoom, 0 or f fits). Every control is a real <button> or <select>.
import { MAIN, nodeId, truncate } from "./model.js";

const TOOLS_KEY = "agentwatch.tools"; // localStorage: "on" when tool satellites are shown
const ALL = ""; // the <select> value for every session
const PROJECT_MAX = 24;

/** Builds the controls into `bar` and drives `graph` (see createGraph's view methods). */
export function createToolbar(model, graph, bar) {
  const sessions = element("select", { id: "session-select", "aria-label": "Sessions shown" });
  const fit = button("view-fit", "fit", "Show every node (keys 0 or f); the view then follows new sessions");
  const focus = button("view-focus", "focus session", "Show one session as large as fits");
  const zoomIn = button("view-zoom-in", "+", "Zoom in (key +)", "zoom in");
  const zoomOut = button("view-zoom-out", "−", "Zoom out (key -)", "zoom out");
  const tools = button("view-tools", "tools", "Show the tools each agent used, sized by calls");
  tools.setAttribute("aria-pressed", "false");
  bar.replaceChildren(sessions, fit, focus, zoomIn, zoomOut, tools);

  sessions.addEventListener("change", () => graph.showSession(sessions.value === ALL ? null : sessions.value));
  fit.addEventListener("click", () => graph.fit());
  focus.addEventListener("click", () => graph.focusSession());
  zoomIn.addEventListener("click", () => graph.zoomBy(1));
  zoomOut.addEventListener("click", () => graph.zoomBy(-1));
  tools.addEventListener("click", () => setTools(!graph.toolsShown()));

  function setTools(on) {
    graph.showTools(on);
    tools.setAttribute("aria-pressed", String(on));
    try {
      localStorage.setItem(TOOLS_KEY, on ? "on" : "off");
    } catch {
      // storage refused (a private window): the toggle still works for this page
    }
  }

  function storedTools() {
    try {
      return localStorage.getItem(TOOLS_KEY) === "on";
    } catch {
      return false;
    }
  }

  // One option per session, named by its project folder and the start of its id; rebuilt only on change.
  let drawnOptions = "";
  function refresh() {
    const shown = graph.shownSession();
    const ids = model.sessions();
    if (shown !== null && !ids.includes(shown)) ids.push(shown);
    const options = ids.map((id) => [id, sessionName(model, id)]);
    const key = JSON.stringify(options);
    if (key !== drawnOptions) {
      drawnOptions = key;
      const all = element("option", { value: ALL });
      all.textContent = "all sessions";
      sessions.replaceChildren(
        all,
        ...options.map(([id, name]) => {
          const option = element("option", { value: id });
          option.textContent = name;
          return option;
        }),
      );
    }
    sessions.value = shown ?? ALL;
    const target = graph.focusTarget();
    focus.disabled = target === null;
    focus.title = target === null ? "No session to show" : `Show ${sessionName(model, target)} as large as fits`;
  }

  function following(on) {
    fit.dataset.following = String(on);
  }

  // Keys act on the view when the focus is on the graph, its toolbar or nowhere in particular: panels keep
  // their own arrows (a scrolling list, the timeline), fields and selects their own keys.
  function keydown(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target !== document.body && !target.closest?.("#graph, #toolbar")) return;
    if (target.closest?.("input, select, textarea, [contenteditable]")) return;
    const act = KEYS[event.key];
    if (!act) return;
    event.preventDefault();
    act(graph);
  }

  graph.on("structure", refresh);
  graph.on("follow", following);
  document.addEventListener("keydown", keydown);
  addEventListener("focusin", refresh); // the focused node decides what "focus session" shows
  following(graph.following());
  refresh();
  if (storedTools()) setTools(true);
  return { refresh };
}

// The content moves the other way: the left arrow shows what is to the left.
const KEYS = {
  ArrowLeft: (g) => g.panBy(1, 0),
  ArrowRight: (g) => g.panBy(-1, 0),
  ArrowUp: (g) => g.panBy(0, 1),
  ArrowDown: (g) => g.panBy(0, -1),
  "+": (g) => g.zoomBy(1),
  "=": (g) => g.zoomBy(1),
  "-": (g) => g.zoomBy(-1),
  _: (g) => g.zoomBy(-1),
  0: (g) => g.fit(),
  f: (g) => g.fit(),
  F: (g) => g.fit(),
};

/** "acme-shop · 7f3c2a91": the project folder of its orchestrator, and the start of the session id. */
export function sessionName(model, sessionId) {
  const project = model.nodes.get(nodeId(sessionId, MAIN))?.project;
  const folder = project ? String(project).split("/").filter(Boolean).pop() : null;
  const short = String(sessionId).slice(0, 8);
  return folder ? `${truncate(folder, PROJECT_MAX)} · ${short}` : `session ${short}`;
}

function button(id, text, title, label) {
  const b = element("button", { id, type: "button", title });
  if (label) b.setAttribute("aria-label", label);
  b.textContent = text;
  return b;
}

function element(tag, attributes) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  return el;
}
