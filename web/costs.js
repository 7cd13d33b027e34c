// Costs on the graph: a toggle that writes each node's cost under its label, its own or its subtree's
// (marked Σ). The figures are usage.js's (through costLabel in inspect.js); this draws them as SVG text.
import { costLabel } from "./inspect.js";

const SVG = "http://www.w3.org/2000/svg";
const STORE_KEY = "agentwatch.costs"; // localStorage: "own" or "subtree" while shown, else absent
const LINE = 13; // layout units between the node's label and its cost

/** `box` is the empty toolbar container; `svg` the graph. Call draw() after the graph redrew. */
export function createCostToggle(model, box, svg) {
  const check = document.createElement("input");
  check.type = "checkbox";
  check.id = "cost-labels";
  const label = document.createElement("label");
  label.append(check, " costs on graph");
  const mode = document.createElement("select");
  mode.id = "cost-mode";
  mode.setAttribute("aria-label", "Which cost the graph shows");
  for (const [value, text] of [
    ["subtree", "Σ subtree"],
    ["own", "own"],
  ]) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = text;
    mode.append(option);
  }
  box.append(label, mode);

  function set(on, which = mode.value) {
    check.checked = on;
    mode.value = which;
    mode.disabled = !on;
    svg.classList.toggle("show-costs", on);
    try {
      if (on) localStorage.setItem(STORE_KEY, which);
      else localStorage.removeItem(STORE_KEY);
    } catch {
      // storage refused (a private window): the toggle still works for this page
    }
    draw();
  }

  // One text per node, added on first need; only changed texts and positions are written.
  function draw() {
    if (!check.checked) return;
    for (const g of svg.querySelectorAll("#nodes g.node")) {
      const d = g.__data__;
      if (!d || typeof d.agentId !== "string") continue;
      let text = g.querySelector(":scope > .cost-label");
      if (!text) {
        text = document.createElementNS(SVG, "text");
        text.setAttribute("class", "cost-label");
        text.setAttribute("text-anchor", "middle");
        g.append(text);
      }
      const words = costLabel(model, d, mode.value);
      if (text.textContent !== words) text.textContent = words;
      const dy = String(Number(g.querySelector(":scope > .label")?.getAttribute("dy") ?? 22) + LINE);
      if (text.getAttribute("dy") !== dy) text.setAttribute("dy", dy);
    }
  }

  check.addEventListener("change", () => set(check.checked));
  mode.addEventListener("change", () => set(check.checked));
  let stored = null;
  try {
    stored = localStorage.getItem(STORE_KEY);
  } catch {
    stored = null;
  }
  set(stored === "own" || stored === "subtree", stored === "own" ? "own" : "subtree");
  return { draw };
}
