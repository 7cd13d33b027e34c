// The node tooltip: describe() from present.js, rendered as text lines, refreshed while shown so ages tick.
import { describe } from "./present.js";

export function createTooltip(model, tooltip) {
  let tipNode = null;

  function show(event, d) {
    tipNode = d;
    render();
    tooltip.hidden = false;
    move(event);
  }

  function move(event) {
    const x = Math.min(event.clientX + 14, innerWidth - tooltip.offsetWidth - 8);
    const y = Math.min(event.clientY + 14, innerHeight - tooltip.offsetHeight - 8);
    tooltip.style.left = `${Math.max(4, x)}px`;
    tooltip.style.top = `${Math.max(4, y)}px`;
  }

  function hide() {
    tipNode = null;
    tooltip.hidden = true;
  }

  function render() {
    tooltip.replaceChildren(
      ...describe(tipNode, Date.now()).map((line) => {
        const div = document.createElement("div");
        div.textContent = line;
        return div;
      }),
    );
  }

  // A re-keyed node is the same object under a new id, so it keeps its tooltip; a removed one loses it.
  function refresh() {
    if (!tipNode) return;
    if (model.nodes.get(tipNode.id) !== tipNode) hide();
    else render();
  }

  return { show, move, hide, refresh };
}
