// The activity feed: the last events as lines, newest first, filtered by session or agent, and held still
// while the pointer is over it. The lines and the rules are FeedModel's (feedmodel.js); this draws them,
// at most once a frame, always as text.
import { FeedModel } from "./feedmodel.js";

const OPEN_KEY = "agentwatch.feed"; // localStorage: "open" once opened, until closed again
// Lines are drawn at most this often: faster than anyone reads, and each redraw repaints the panel's text.
const DRAW_MS = 250;

/** `section` is the empty feed <section>. Call receive(msg, result) with every frame the model applied. */
export function createFeed(model, section) {
  const feed = new FeedModel();
  const items = new Map(); // line n -> its <li>
  let dirty = false;

  const el = (tag, attrs = {}, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const toggle = el("button", { type: "button", class: "toggle", "aria-controls": "feed-body" }, "activity");
  const sessions = el("select", { id: "feed-session", "aria-label": "Activity of session" });
  const agents = el("select", { id: "feed-agent", "aria-label": "Activity of agent" });
  const note = el("span", { class: "note", role: "status" });
  const lines = el("ol", { id: "feed-lines", "aria-label": "Events, newest first" });
  const head = el("div", { class: "head" });
  const body = el("div", { id: "feed-body", class: "body" });
  head.append(toggle, note);
  body.append(el("div", { class: "filters" }), lines);
  body.firstChild.append(sessions, agents);
  section.append(head, body);

  function setOpen(open, remember = false) {
    section.dataset.open = String(open);
    toggle.setAttribute("aria-expanded", String(open));
    body.hidden = !open;
    if (remember) store(open ? "open" : "closed");
    if (open) schedule();
  }

  /** One frame the model took: an applied event becomes a line. */
  let epoch = null;
  function receive(msg, result) {
    if (msg?.type === "snapshot") {
      if (feed.rewind(msg.seq, epoch === null || msg.epoch === epoch)) schedule();
      epoch = msg.epoch;
      return;
    }
    if (msg?.type !== "event" || result.ignored || result.resync || !msg.data?.session_id) return;
    const data = msg.data;
    const node = model.lookup(`${data.session_id}/${data.agent_id || "main"}`);
    if (feed.push(msg.seq, data, node)) schedule();
  }

  let lastDraw = 0;
  function schedule() {
    if (dirty) return;
    dirty = true;
    const wait = Math.max(0, lastDraw + DRAW_MS - performance.now());
    setTimeout(() => requestAnimationFrame(draw), wait);
  }

  function draw() {
    dirty = false;
    lastDraw = performance.now();
    note.textContent = feed.paused ? (feed.unseen ? `paused · ${feed.unseen} new` : "paused") : "";
    section.dataset.paused = String(feed.paused);
    if (!feed.paused && !body.hidden) render();
  }

  function render() {
    const shown = feed.view();
    // Keep each line's element: new lines go in at the top, old ones leave at the bottom.
    shown.forEach((line, i) => {
      const li = items.get(line.n) ?? itemOf(line);
      if (li.dataset.agent !== line.id) li.dataset.agent = line.id; // re-keyed since it was drawn
      if (lines.children[i] !== li) lines.insertBefore(li, lines.children[i] ?? null);
    });
    while (lines.children.length > shown.length) lines.lastChild.remove();
    const kept = new Set(feed.lines.map((l) => l.n));
    for (const n of items.keys()) if (!kept.has(n)) items.delete(n);
    options();
  }

  function itemOf(line) {
    const li = el("li", { "data-seq": line.seq, "data-tone": line.tone, "data-agent": line.id });
    const who = el("button", { type: "button", class: "who", "data-family": line.family, title: `only ${line.name}` }, line.name);
    who.addEventListener("click", () => filter({ agent: line.id }));
    li.append(el("time", { datetime: new Date(line.ts).toISOString() }, line.time), who, el("span", { class: "what" }, line.text));
    items.set(line.n, li);
    return li;
  }

  // The selects list the sessions and agents the feed has lines of; rebuilt only when those change.
  let drawnOptions = "";
  function options() {
    const sessionList = feed.sessions();
    const agentList = feed.filter.session ? feed.agents(feed.filter.session) : [];
    const key = JSON.stringify([sessionList, agentList]);
    if (key !== drawnOptions) {
      drawnOptions = key;
      sessions.replaceChildren(el("option", { value: "" }, "all sessions"), ...sessionList.map((s) => el("option", { value: s.id }, s.name)));
      agents.replaceChildren(el("option", { value: "" }, "all agents"), ...agentList.map((a) => el("option", { value: a.id }, a.name)));
    }
    sessions.value = feed.filter.session ?? "";
    agents.value = feed.filter.agent ?? "";
    agents.disabled = !feed.filter.session;
  }

  // A filter asked for is shown at once, even while the pointer holds the feed still.
  function filter(wanted) {
    feed.setFilter(wanted);
    if (feed.paused) render();
    draw();
  }

  sessions.addEventListener("change", () => filter({ session: sessions.value || null }));
  agents.addEventListener("change", () => filter(agents.value ? { agent: agents.value } : { session: feed.filter.session }));
  toggle.addEventListener("click", () => setOpen(body.hidden, true));
  section.addEventListener("pointerenter", () => {
    feed.pause();
    draw();
  });
  section.addEventListener("pointerleave", () => {
    feed.resume();
    schedule();
  });

  // Closed until asked for: its lines cost the graph frames on a busy page.
  setOpen(load() === "open");
  options();
  return { receive, feed };
}

function store(value) {
  try {
    localStorage.setItem(OPEN_KEY, value);
  } catch {
    // storage refused (a private window): the toggle still works for this page
  }
}

function load() {
  try {
    return localStorage.getItem(OPEN_KEY);
  } catch {
    return null;
  }
}
