// The inspector: a side panel on one agent, opened by clicking a node (or Enter on a focused one: graph.js
// turns it into a click), kept live while events arrive, closed with Esc or its close button. What it says
// comes from inspect() in inspect.js; this only puts it on the page, always as text.
import { inspect } from "./inspect.js";

const FIELDS = [
  ["type", "type"],
  ["model", "model"],
  ["status", "status"],
  ["started", "started"],
  ["duration", "duration"],
  ["waited", "waited for you"],
  ["parent", "parent"],
  ["id", "id"],
];

/**
 * `panel` is the empty <aside>; `graph.element(id)` finds a node's <g> to mark it selected. Returns
 * select(node), close(), refresh() (call it on a timer: times tick) and selected().
 */
export function createInspector(model, graph, panel) {
  let node = null; // the node shown: kept after it finishes, so its last state stays readable
  let marked = null; // the <g> marked data-selected
  let opener = null; // what had the focus when the panel opened, to give it back on Esc
  const drawn = {}; // list name -> the key of what it shows, so unchanged lists keep their elements (and focus)

  const el = (tag, attrs = {}, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };

  // The skeleton, built once; render() fills it.
  const title = el("h2", { id: "inspector-title", tabindex: "-1" });
  const close = el("button", { type: "button", class: "close", "aria-label": "Close the inspector (Esc)" }, "×");
  const description = el("p", { class: "description", "data-field": "description" });
  const asked = el("p", { class: "asked", "data-field": "asked" });
  const facts = el("dl", { class: "facts" });
  const values = {};
  for (const [key, label] of FIELDS) {
    const row = el("div", { "data-row": key });
    values[key] = el("dd", { "data-field": key });
    row.append(el("dt", {}, label), values[key]);
    facts.append(row);
  }
  const toolsTitle = el("h3", {}, "tools");
  const tools = el("ul", { class: "tools", "data-list": "tools" });
  const callsTitle = el("h3", {}, "last calls");
  const calls = el("table", { class: "calls", "data-list": "calls" });
  const usageTitle = el("h3", {}, "tokens and cost");
  const usage = el("table", { class: "usage", "data-list": "usage" });
  const note = el("p", { class: "note", "data-field": "cost-note" });
  const childrenTitle = el("h3", {}, "children");
  const children = el("ul", { class: "children", "data-list": "children" });
  const head = el("div", { class: "head" });
  head.append(title, close);
  panel.append(head, description, asked, facts, toolsTitle, tools, callsTitle, calls, usageTitle, usage, note);
  panel.append(childrenTitle, children);
  panel.setAttribute("aria-labelledby", "inspector-title");

  function select(target, { focusPanel = false } = {}) {
    if (!target) return;
    if (panel.hidden) opener = document.activeElement;
    node = target;
    for (const key in drawn) delete drawn[key];
    panel.hidden = false;
    render();
    if (focusPanel) title.focus();
  }

  function closePanel() {
    if (!node) return;
    const hadFocus = panel.contains(document.activeElement);
    node = null;
    panel.hidden = true;
    mark(null);
    if (hadFocus && opener?.isConnected) opener.focus();
    opener = null;
  }

  function mark(element) {
    if (marked === element) return;
    marked?.removeAttribute("data-selected");
    marked = element ?? null;
    marked?.setAttribute("data-selected", "true");
  }

  // Written only when it changed: the panel refreshes four times a second.
  const set = (element, text) => {
    if (element.textContent !== text) element.textContent = text;
  };

  // A link to another agent: a button that selects it.
  function link(ref) {
    const b = el("button", { type: "button", class: "link", "data-id": ref.id, "data-status": ref.status }, ref.label);
    b.addEventListener("click", () => select(model.lookup(ref.id), { focusPanel: true }));
    return b;
  }

  // Replace a list's children only when what it shows changed.
  function list(name, container, items, build) {
    const key = JSON.stringify(items);
    if (drawn[name] === key) return;
    drawn[name] = key;
    container.replaceChildren(...build(items));
  }

  function render() {
    if (!node) return;
    // A reset snapshot draws new objects: follow the one with this id.
    const current = model.nodes.get(node.id);
    if (current && current !== node) node = current;
    const v = inspect(model, node, Date.now());
    if (panel.dataset.status !== v.status) panel.dataset.status = v.status;
    if (panel.dataset.family !== v.family) panel.dataset.family = v.family;
    set(title, v.title);
    set(description, v.description ?? "");
    description.hidden = !v.description;
    set(asked, v.asked ? `asked: ${v.asked}` : "");
    asked.hidden = !v.asked;
    set(values.type, v.type);
    set(values.model, v.model);
    set(values.status, v.gone ? "no longer in the stream" : v.statusText);
    set(values.started, v.started);
    set(values.duration, v.ticking ? `${v.duration} so far` : v.duration);
    set(values.waited, v.waited ? `${v.waited}${v.waitingNow ? " (waiting now)" : ""}` : "–");
    set(values.id, v.agentId + (v.provisional ? " (stand-in)" : ""));
    list("parent", values.parent, v.parent, (p) => (p ? [link(p)] : [document.createTextNode("–")]));

    const sessionNote = v.prompts === null ? "" : ` · ${v.prompts} prompts · ${v.agentsTotal} agents spawned`;
    set(toolsTitle, `tools: ${v.toolCount} calls${sessionNote}`);
    list("tools", tools, v.tools, (items) =>
      items.map(([tool, n]) => {
        const li = el("li", { "data-tool": tool });
        li.append(el("span", { class: "tool" }, tool), el("b", {}, String(n)));
        return li;
      }),
    );
    set(callsTitle, v.calls.length ? `last ${v.calls.length} calls seen, newest first` : "no calls seen yet");
    list("calls", calls, v.calls, (items) =>
      items.map((c) => {
        const tr = el("tr", { "data-state": c.state, title: c.error ?? "" });
        const mark = c.state === "failed" ? "✕" : c.state === "done" ? "✓" : "…";
        tr.append(
          el("td", { class: "tool" }, c.tool),
          el("td", { class: "summary" }, c.summary),
          el("td", { class: "duration" }, c.duration),
          el("td", { class: "result", "aria-label": c.state }, mark),
        );
        return tr;
      }),
    );
    list("usage", usage, v.usage, (rows) => {
      const headRow = el("tr");
      headRow.append(el("th"), el("th", { scope: "col" }, "own"), el("th", { scope: "col" }, "subtree"));
      return [
        headRow,
        ...rows.map((r) => {
          const tr = el("tr", { "data-row": r.label });
          tr.append(el("th", { scope: "row" }, r.label), el("td", { "data-col": "own" }, r.own), el("td", { "data-col": "subtree" }, r.subtree));
          return tr;
        }),
      ];
    });
    set(note, v.costNote);
    note.hidden = !v.costNote;
    set(childrenTitle, `children: ${v.children.length}`);
    list("children", children, v.children, (items) =>
      items.map((c) => {
        const li = el("li");
        li.append(link(c), el("span", { class: "child-status" }, ` ${c.statusText}`), el("span", { class: "cost" }, c.cost === "–" ? "" : ` ${c.cost}`));
        return li;
      }),
    );
    mark(graph.element(node.id));
  }

  // A click on a node (graph.js turns Enter and Space on a focused node into one) opens it here.
  document.getElementById("nodes").addEventListener("click", (event) => {
    const g = event.target.closest?.("g.node");
    const target = g?.__data__;
    if (target && typeof target.agentId === "string") select(target);
  });
  close.addEventListener("click", closePanel);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && node && !event.defaultPrevented) closePanel();
  });

  return { select, close: closePanel, refresh: render, selected: () => node };
}
