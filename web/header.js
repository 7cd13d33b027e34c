// The session header: what everything alive costs, what the last hour cost (as seen from this page), and one
// line per session: its project, prompts, alive and total agents, and its cost. A session's name opens its
// orchestrator in the inspector. The figures are inspect.js's and usage.js's; this puts them on the page.
import { aliveCost, sessionSummaries } from "./inspect.js";
import { formatUsd } from "./usage.js";

const SESSIONS_SHOWN = 6; // more sessions than this are counted, not listed

/** `box` is the header's empty container; `select(node)` opens a node in the inspector. */
export function createHeader(model, box, select) {
  const el = (tag, attrs = {}, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const alive = el("b", { id: "cost-alive" });
  const windowLabel = el("span", { id: "cost-window-label" });
  const windowCost = el("b", { id: "cost-window" });
  const summary = el("p", { id: "cost-summary", title: "Cost of every alive session, and the cost seen since the page opened, up to an hour" });
  const aliveSpan = el("span", {}, "alive ");
  aliveSpan.append(alive);
  const windowSpan = el("span");
  windowSpan.append(windowLabel, " ", windowCost);
  summary.append(aliveSpan, windowSpan);
  const list = el("ul", { id: "session-list", "aria-label": "Sessions" });
  box.prepend(summary);
  box.append(list);

  let drawn = "";
  function refresh() {
    const now = Date.now();
    const seen = model.costs.total(now);
    setText(alive, aliveCost(model).text);
    setText(windowLabel, seen.label);
    setText(windowCost, formatUsd(seen.usd));
    const rows = sessionSummaries(model);
    const key = JSON.stringify(rows);
    if (key === drawn) return;
    drawn = key;
    const items = rows.slice(0, SESSIONS_SHOWN).map((s) => {
      const li = el("li", { "data-session": s.sessionId, "data-ended": String(s.ended) });
      const name = el("button", { type: "button", class: "link", title: `Inspect the orchestrator of ${s.name}` }, s.name);
      name.addEventListener("click", () => select(model.lookup(s.id)));
      const prompts = `${s.prompts} prompt${s.prompts === 1 ? "" : "s"}`;
      li.append(name, el("span", { class: "facts" }, ` ${prompts} · ${s.alive}/${s.total} agents · ${s.cost}`));
      return li;
    });
    if (rows.length > SESSIONS_SHOWN) items.push(el("li", { class: "more" }, `+${rows.length - SESSIONS_SHOWN} more`));
    list.replaceChildren(...items);
  }

  refresh();
  return { refresh };
}

// Written only when it changed: an unchanged header costs no layout.
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
