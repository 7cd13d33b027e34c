// The timeline under the graph (issue 12): the retained window as events per minute (failures in red), markers
// for session starts and ends and failures, a playhead to drag, and the player's controls. Clicking or dragging
// the strip replays from there; "live" returns. The geometry is timelinemodel.js's, the socket replay.js's.
import {
  SPEEDS,
  anchorsOf,
  bannerText,
  markText,
  parseSpeed,
  placeMarks,
  seqAt,
  speedText,
  stripBins,
  timeAt,
  timeScale,
  timeText,
} from "./timelinemodel.js";

const REFRESH_MS = 10_000; // the window is fetched again this often, so the strip grows
const SEEK_DEBOUNCE_MS = 180; // while dragging, a seek opens a socket only once the pointer rests this long
const MARK_LANE = 11; // px at the top of the strip for the markers; the bars take the rest
const TIP_LINES = 6;
const INSET = 6; // px kept free at each end of the strip, so markers there are drawn whole

/** Builds the timeline into `section` and drives `replay` (see createReplay); `status()` is the badge's status. */
export function createTimeline(d3, model, replay, section, status) {
  const root = document.documentElement.style;
  if (new URLSearchParams(location.search).has("share")) {
    // A share link shows one session live; replay needs the relay's token.
    section.hidden = true;
    root.setProperty("--timeline-h", "0px");
    return;
  }
  const el = (tag, attrs = {}, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  // Not live regions: they change with every event replayed. The slider's value text says where the replay is.
  const banner = el("div", { id: "replay-banner" });
  const state = el("span", { id: "tl-state" });
  const note = el("span", { id: "tl-note", role: "status" });
  const play = el("button", { id: "tl-play", type: "button" });
  const step = el("button", { id: "tl-step", type: "button", title: "Show the next event, then stay paused" }, "step");
  const speed = el("select", { id: "tl-speed", "aria-label": "Replay speed", title: "Replay speed" });
  const first = el("span", { id: "tl-first", class: "bound" });
  const last = el("span", { id: "tl-last", class: "bound" });
  const live = el("button", { id: "tl-live", type: "button", title: "Back to the live view" }, "● live");
  // Outside the bar (its own layer, which would clip them): a marker's tooltip, and the relay's refusal in full.
  const tip = el("div", { id: "tl-tip", role: "tooltip", hidden: "" });
  const refusal = el("div", { id: "tl-error", role: "alert", hidden: "" });
  const svgNs = "http://www.w3.org/2000/svg";
  const strip = document.createElementNS(svgNs, "svg");
  for (const [k, v] of Object.entries({ id: "tl-strip", role: "slider", tabindex: "0", "aria-label": "Replay position" })) {
    strip.setAttribute(k, v);
  }
  const info = el("div", { class: "tl-info" });
  const row = el("div", { class: "tl-row" });
  info.append(banner, state, note);
  row.append(play, step, speed, first, strip, last, live);
  section.append(info, row);
  document.body.append(tip, refusal);
  speed.replaceChildren(...SPEEDS.map((s) => el("option", { value: String(s) }, speedText(s))));

  const svg = d3.select(strip);
  const bars = svg.append("g").attr("class", "tl-bins");
  const marks = svg.append("g").attr("class", "tl-marks");
  const head = svg.append("g").attr("class", "tl-head");
  head.append("line").attr("class", "tl-head-line");
  head.append("rect").attr("class", "tl-head-grip");

  let overview = null; // /replay/window as last fetched
  let fetched = 0; // how many times: the strip is redrawn after each
  let anchors = [];
  let problem = null; // why the window could not be read
  let drawn = ""; // what the strip's bars and markers were drawn for
  let drag = null; // {x, sought, timer} while the pointer drags the playhead
  let frame = 0;
  let fetchedAt = -Infinity;

  // Fetched again every REFRESH_MS, but only while the relay answers: a refused fetch is a console error.
  function tick() {
    const up = ["connected", "replay", "refused"].includes(status());
    if (up && Date.now() - fetchedAt >= (overview ? REFRESH_MS : 1000)) refresh();
    schedule(); // live: the playhead's seq and the bounds follow the model
  }

  async function refresh() {
    fetchedAt = Date.now();
    const token = new URLSearchParams(location.search).get("token");
    try {
      const response = await fetch(`/replay/window${token ? `?token=${encodeURIComponent(token)}` : ""}`, {
        cache: "no-store",
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
      overview = body;
      fetched++;
      anchors = anchorsOf(body);
      problem = null;
      replay.know(body);
    } catch (exc) {
      problem = `replay unavailable: ${exc.message || exc}`;
    }
    schedule();
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }

  // The window to draw: the fetched one, or the bounds the relay gave with its refusal or its snapshot.
  function windowShown() {
    const bounds = replay.player.bounds;
    if (!overview) return bounds;
    if (bounds && bounds.epoch === overview.epoch && bounds.last_seq > overview.last_seq) return { ...overview, ...bounds };
    return overview;
  }

  function render() {
    frame = 0;
    const p = replay.player;
    const mode = p.mode;
    section.dataset.mode = mode;
    section.dataset.playing = String(mode === "live" || p.playing || p.stepping);
    section.dataset.ended = String(p.ended);
    section.dataset.speed = String(p.speed);
    section.dataset.seq = String(mode === "live" ? (model.seq ?? "") : (p.seq ?? ""));
    const estimated = mode === "replay" && !Number.isFinite(p.ts);
    const ts = estimated ? timeAt(anchors, p.seq ?? p.target) : p.ts;
    banner.hidden = mode === "live";
    banner.textContent = mode === "live" ? "" : mode === "refused" ? "Replay refused" : bannerText(ts, p.speed, estimated);
    state.textContent =
      mode === "live"
        ? "live · click or drag the strip to replay"
        : mode === "refused"
          ? ""
          : p.landing !== null || p.seq === null
            ? "seeking…"
            : !p.playing && !p.stepping
              ? `seq ${p.seq} · paused`
              : p.ended
                ? `end of the window at seq ${p.seq}: following new events`
                : `seq ${p.seq}`;
    note.textContent = mode === "refused" ? "" : (p.notice ?? problem ?? "");
    note.title = note.textContent; // the whole text, when the bar is too narrow for it
    refusal.hidden = mode !== "refused";
    refusal.textContent = mode === "refused" ? p.error.message : "";
    const playing = mode === "live" || p.playing || p.stepping;
    play.textContent = playing ? "❚❚" : "▶";
    play.setAttribute("aria-label", playing ? "pause" : "play");
    play.title = mode === "live" ? "Pause: hold the view where it is" : playing ? "Pause" : "Play";
    play.disabled = mode === "refused" || (mode === "live" && model.seq === null);
    step.disabled = mode !== "replay" || p.ended;
    if (![...speed.options].some((o) => o.value === String(p.speed))) {
      speed.append(el("option", { value: String(p.speed) }, speedText(p.speed)));
    }
    speed.value = String(p.speed);
    live.setAttribute("aria-pressed", String(mode === "live"));
    live.disabled = mode === "live";
    drawStrip(windowShown(), ts);
  }

  function drawStrip(win, ts) {
    const p = replay.player;
    const { width, height } = strip.getBoundingClientRect();
    first.textContent = win ? `${timeText(win.first_ts)}\nseq ${win.first_seq ?? "–"}` : "";
    last.textContent = win ? `${timeText(win.last_ts)}\nseq ${win.last_seq ?? "–"}` : "";
    if (!win || !Number.isFinite(win.first_seq) || width === 0) {
      head.attr("display", "none");
      return;
    }
    const scale = timeScale(win, width, p.mode === "replay" ? ts : null, INSET);
    const key = JSON.stringify([fetched, width, height, scale.t0, scale.t1, win.last_seq]);
    if (key !== drawn) {
      drawn = key;
      drawBars(win, scale, height);
      drawMarks(win, scale);
    }
    const x = drag ? drag.x : scale.x(p.mode === "live" ? scale.t1 : (ts ?? scale.t1));
    head.attr("display", null).attr("data-mode", p.mode).attr("transform", `translate(${x},0)`);
    head.select("line").attr("y1", 0).attr("y2", height);
    head.select("rect").attr("x", -4).attr("y", 0).attr("width", 8).attr("height", height);
    const seq = p.mode === "live" ? (model.seq ?? win.last_seq) : (p.seq ?? p.target ?? win.first_seq);
    strip.setAttribute("aria-valuemin", String(win.first_seq));
    strip.setAttribute("aria-valuemax", String(Math.max(win.last_seq, seq ?? 0)));
    strip.setAttribute("aria-valuenow", String(seq ?? win.first_seq));
    strip.setAttribute("aria-valuetext", p.mode === "live" ? "live" : `seq ${seq}, ${timeText(ts)}`);
  }

  function drawBars(win, scale, height) {
    const bins = stripBins(win.minutes ?? [], scale);
    const most = Math.max(1, ...bins.map((b) => b.events));
    const top = MARK_LANE + 1;
    const h = (n) => (n > 0 ? Math.max(1.5, (n / most) * (height - top)) : 0);
    bars
      .selectAll("g.tl-bin")
      .data(bins, (b) => b.key)
      .join((enter) => {
        const g = enter.append("g").attr("class", "tl-bin");
        g.append("rect").attr("class", "tl-events");
        g.append("rect").attr("class", "tl-fails");
        return g;
      })
      .attr("data-events", (b) => b.events)
      .attr("data-failures", (b) => b.failures)
      .attr("data-minute", (b) => b.from)
      .each(function (b) {
        const w = Math.max(1, b.x1 - b.x0 - (b.x1 - b.x0 > 3 ? 1 : 0));
        const [events, fails] = this.childNodes;
        events.setAttribute("x", b.x0);
        events.setAttribute("width", w);
        events.setAttribute("y", height - h(b.events));
        events.setAttribute("height", h(b.events));
        fails.setAttribute("x", b.x0);
        fails.setAttribute("width", w);
        fails.setAttribute("y", height - h(b.failures));
        fails.setAttribute("height", h(b.failures));
      });
  }

  function drawMarks(win, scale) {
    const shape = { start: "M-4,9L0,2L4,9Z", end: "M-3.5,2H3.5V9H-3.5Z", fail: "M0,1L4,5.5L0,10L-4,5.5Z" };
    marks
      .selectAll("g.tl-mark")
      .data(placeMarks(win.marks ?? [], scale), (g) => `${g.kind}:${g.seq}`)
      .join((enter) => {
        const g = enter.append("g").attr("class", "tl-mark");
        g.append("line").attr("y1", 10).attr("y2", "100%");
        g.append("path");
        return g;
      })
      .attr("data-kind", (g) => g.kind)
      .attr("data-seq", (g) => g.seq)
      .attr("data-count", (g) => g.marks.length)
      .attr("data-types", (g) => [...new Set(g.marks.map((m) => m.type))].join(" "))
      .attr("transform", (g) => `translate(${g.x},0)`)
      .select("path")
      .attr("d", (g) => shape[g.kind]);
  }

  // A marker's events (the agent named as the page knows it), or a bar's minutes and counts.
  function showTip(target) {
    const d = d3.select(target).datum();
    const name = (m) => {
      const node = m.agent_id ? model.lookup(`${m.session_id}/${m.agent_id}`) : null;
      return node && node.agentType !== "agent" ? node.agentType : null;
    };
    const lines = d.marks
      ? d.marks.slice(0, TIP_LINES).map((m) => `${timeText(m.ts)} · ${markText(m, name(m))} · seq ${m.seq}`)
      : [`${timeText(d.from * 60_000)}${d.to > d.from ? ` to ${timeText(d.to * 60_000 + 59_999)}` : ""}`,
         `${d.events} events${d.failures ? `, ${d.failures} failed` : ""}${d.to > d.from ? "" : " in the minute"}`];
    if (d.marks?.length > TIP_LINES) lines.push(`and ${d.marks.length - TIP_LINES} more`);
    tip.replaceChildren(...lines.map((line) => el("div", {}, line)));
    tip.hidden = false;
    const box = target.getBoundingClientRect();
    const left = Math.min(Math.max(4, box.left + box.width / 2 - tip.offsetWidth / 2), innerWidth - tip.offsetWidth - 4);
    tip.style.left = `${left}px`;
    tip.style.bottom = `${innerHeight - strip.getBoundingClientRect().top + 6}px`;
  }

  // The strip is the playhead's track: press anywhere to jump there, drag to scrub, press a marker for its event.
  const seqOfX = (x) => {
    const win = windowShown();
    const p = replay.player;
    const scale = timeScale(win, strip.getBoundingClientRect().width, p.mode === "replay" ? p.ts : null, INSET);
    const seq = seqAt(anchors.length ? anchors : anchorsOf(win), scale.ts(x));
    return seq === null ? null : Math.max(win.first_seq, Math.min(win.last_seq, seq));
  };

  function scrub(event, final) {
    const x = event.clientX - strip.getBoundingClientRect().left;
    const seq = seqOfX(x);
    drag.x = Math.max(0, Math.min(strip.getBoundingClientRect().width, x));
    clearTimeout(drag.timer);
    const go = () => {
      if (seq !== null && seq !== drag?.sought) replay.seek(seq);
      if (drag) drag.sought = seq;
    };
    if (final) {
      go();
      drag = null;
    } else {
      drag.timer = setTimeout(go, SEEK_DEBOUNCE_MS);
    }
    schedule();
  }

  strip.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || !windowShown() || !Number.isFinite(windowShown().first_seq)) return;
    const mark = event.target.closest?.(".tl-mark");
    if (mark) {
      replay.seek(Number(mark.dataset.seq));
      return;
    }
    strip.setPointerCapture(event.pointerId);
    tip.hidden = true;
    drag = { x: 0, sought: null, timer: null };
    scrub(event, false);
  });
  strip.addEventListener("pointermove", (event) => drag && scrub(event, false));
  strip.addEventListener("pointerup", (event) => drag && scrub(event, true));
  strip.addEventListener("pointercancel", () => {
    clearTimeout(drag?.timer);
    drag = null;
    schedule();
  });
  strip.addEventListener("pointerover", (event) => {
    const target = event.target.closest?.(".tl-mark, .tl-bin");
    if (target && !drag) showTip(target);
  });
  strip.addEventListener("pointerout", (event) => {
    if (event.target.closest?.(".tl-mark, .tl-bin")) tip.hidden = true;
  });
  // Arrows move one event, Home goes to the window's start, End back to live. The graph's keys stay out.
  strip.addEventListener("keydown", (event) => {
    const win = windowShown();
    const p = replay.player;
    const at = p.mode === "live" ? model.seq : (p.seq ?? p.target);
    const to = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: win?.first_seq }[event.key];
    if (event.key === "End") replay.live();
    else if (to !== undefined && win && Number.isFinite(to)) replay.seek(Math.max(win.first_seq, Math.min(win.last_seq, to)));
    else return;
    event.preventDefault();
  });

  play.addEventListener("click", () => {
    const p = replay.player;
    if (p.mode === "live" || p.playing || p.stepping) replay.pause();
    else replay.play();
  });
  step.addEventListener("click", () => replay.step());
  speed.addEventListener("change", () => replay.setSpeed(parseSpeed(speed.value) ?? speed.value));
  live.addEventListener("click", () => replay.live());
  replay.on(schedule);
  new ResizeObserver(schedule).observe(strip);
  setInterval(tick, 1000);
  refresh(); // the relay just served this page
  schedule();
}
