// Pure logic of the replay timeline (issue 12): the retained window as a strip of bars, seq <-> time <-> x,
// the markers, the speeds, and Player, the state of one replay. No DOM here: `node --test web/test/` pins it.
// timeline.js draws it, replay.js runs the socket Player steers.

export const SPEEDS = [1, 2, 5, 10, 50, 100, "max"];
export const DEFAULT_SPEED = 1; // the relay's own default
export const CLOSE_REPLAY_REFUSED = 4404; // the relay will not serve this replay: final, never retried
const MINUTE_MS = 60_000;
const MARKED = { session_start: "start", session_end: "end" }; // every other mark is a failure

/** A speed from a URL or a control: 1 to 100 (times real time) or "max"; null for anything else. */
export function parseSpeed(value) {
  const text = String(value ?? "").trim();
  if (text === "max") return "max";
  if (!/^\d+(\.\d+)?$/.test(text)) return null;
  const n = Number(text);
  return n >= 1 && n <= 100 ? n : null;
}

export const speedText = (speed) => (speed === "max" ? "max" : `${speed}x`);

/** HH:MM:SS on this machine's clock; the date first when it is not today's. */
export function timeText(ts, now = Date.now()) {
  if (!Number.isFinite(ts)) return "–";
  const d = new Date(ts);
  const two = (n) => String(n).padStart(2, "0");
  const clock = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  if (d.toDateString() === new Date(now).toDateString()) return clock;
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${clock}`;
}

/** "Replay — 10:02:13 — 10x"; "≈" before a time read off the strip rather than from an event. */
export function bannerText(ts, speed, estimated = false, now = Date.now()) {
  return `Replay — ${estimated && Number.isFinite(ts) ? "≈" : ""}${timeText(ts, now)} — ${speedText(speed)}`;
}

/**
 * Time <-> x over the window [first_ts, end] on `width` pixels less `inset` at each side (so a marker at an
 * end is drawn whole), clamped to the strip. `end` is the window's last_ts, or a later time the replay reached.
 */
export function timeScale(bounds, width, end = null, inset = 0) {
  const t0 = Number.isFinite(bounds?.first_ts) ? bounds.first_ts : 0;
  const last = Math.max(Number.isFinite(bounds?.last_ts) ? bounds.last_ts : t0, Number.isFinite(end) ? end : t0);
  const span = Math.max(1000, last - t0); // an empty window still draws a strip
  const pad = Math.max(0, Math.min(inset, (width - 1) / 2));
  const w = Math.max(1, width - 2 * pad);
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  return {
    t0,
    t1: t0 + span,
    span,
    width: w + 2 * pad,
    x: (ts) => pad + clamp(((ts - t0) / span) * w, 0, w),
    ts: (x) => t0 + (clamp(x - pad, 0, w) / w) * span,
  };
}

/**
 * Known (seq, ts) points of the window, ts ascending and seq never falling: its ends, every marker (exact),
 * and each minute's first and last instants (the seq there counted back from the end, so a window cut in the
 * middle of a minute still lines up). Between two points the seq is interpolated.
 */
export function anchorsOf(overview) {
  const first = overview?.first_seq;
  if (!Number.isFinite(first) || !Number.isFinite(overview.first_ts)) return [];
  const last = Math.max(first, Number.isFinite(overview.last_seq) ? overview.last_seq : first);
  const lastTs = Math.max(overview.first_ts, Number.isFinite(overview.last_ts) ? overview.last_ts : overview.first_ts);
  const points = [
    [first, overview.first_ts],
    [last, lastTs],
  ];
  let after = 0; // events in the minutes after the one at hand
  for (const [minute, events] of [...(overview.minutes ?? [])].sort((a, b) => b[0] - a[0])) {
    const start = minute * MINUTE_MS;
    const end = Math.min(start + MINUTE_MS - 1, lastTs);
    if (end >= overview.first_ts) points.push([last - after, end]);
    after += events;
    if (start >= overview.first_ts) points.push([last - after, start]);
  }
  for (const mark of overview.marks ?? []) {
    if (Number.isFinite(mark.seq) && Number.isFinite(mark.ts)) points.push([mark.seq, mark.ts]);
  }
  const clamped = points
    .filter(([, ts]) => ts >= overview.first_ts && ts <= lastTs)
    .map(([seq, ts]) => [Math.min(last, Math.max(first, seq)), ts])
    .sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  let floor = first;
  return clamped.map(([seq, ts]) => [(floor = Math.max(floor, seq)), ts]);
}

/** The seq of the state at time `ts`: the last event at or before it, as far as the anchors tell. */
export function seqAt(anchors, ts) {
  if (anchors.length === 0) return null;
  let i = -1;
  while (i + 1 < anchors.length && anchors[i + 1][1] <= ts) i++;
  if (i < 0) return anchors[0][0];
  if (i === anchors.length - 1) return anchors[i][0];
  const [s0, t0] = anchors[i];
  const [s1, t1] = anchors[i + 1];
  return s0 + Math.floor(((ts - t0) / (t1 - t0)) * (s1 - s0));
}

/** The time of the event at `seq`, as far as the anchors tell. */
export function timeAt(anchors, seq) {
  if (anchors.length === 0) return null;
  const j = anchors.findIndex(([s]) => s >= seq);
  if (j < 0) return anchors.at(-1)[1];
  if (anchors[j][0] === seq || j === 0) return anchors[j][1];
  const [s0, t0] = anchors[j - 1];
  const [s1, t1] = anchors[j];
  return t0 + ((seq - s0) / (s1 - s0)) * (t1 - t0);
}

/**
 * The events-per-minute strip: one bar per minute when a minute is at least `minPx` wide, else minutes summed
 * into columns of `minPx`. Every minute counts, even one outside the window (drawn at its edge), so the bars
 * add up to the window's events. Bars: {key, x0, x1, events, failures, from, to} (from/to: minutes), by x.
 */
export function stripBins(minutes, scale, minPx = 3) {
  const perMinute = (MINUTE_MS / scale.span) * scale.width;
  const lastColumn = Math.max(0, Math.ceil(scale.width / minPx) - 1);
  const bins = new Map();
  for (const [minute, events, failures] of minutes ?? []) {
    let x0 = scale.x(minute * MINUTE_MS);
    let x1 = scale.x((minute + 1) * MINUTE_MS);
    let key = minute;
    if (perMinute < minPx) {
      key = Math.min(lastColumn, Math.floor(x0 / minPx));
      x0 = key * minPx;
      x1 = Math.min(scale.width, x0 + minPx);
    } else if (x1 - x0 < 1) {
      x0 = Math.min(x0, scale.width - 1); // a minute outside the window: a sliver at its edge
      x1 = x0 + 1;
    }
    const bin = bins.get(key) ?? { key, x0, x1, events: 0, failures: 0, from: minute, to: minute };
    bin.events += events;
    bin.failures += failures;
    bin.from = Math.min(bin.from, minute);
    bin.to = Math.max(bin.to, minute);
    bins.set(key, bin);
  }
  return [...bins.values()].sort((a, b) => a.x0 - b.x0);
}

/** "start", "end" or "fail": how a marker is drawn. */
export const markKind = (mark) => MARKED[mark.type] ?? "fail";

/** What a marker stands for, in words; `name` is the agent's name when the mark has no agent_type. */
export function markText(mark, name = null) {
  const agent = mark.agent_id && mark.agent_id !== "main" ? String(mark.agent_id) : null;
  const who = mark.agent_type || name || (agent ? `agent ${agent.slice(0, 8)}` : "orchestrator");
  const project = mark.project ? String(mark.project).split("/").filter(Boolean).pop() : null;
  const session = String(mark.session_id ?? "").slice(0, 8);
  switch (mark.type) {
    case "session_start":
      return `session ${session} started${project ? ` in ${project}` : ""}`;
    case "session_end":
      return `session ${session} ended${mark.reason ? ` (${mark.reason})` : ""}`;
    case "tool_fail":
      return `${mark.tool ?? "a tool"} failed in ${who}`;
    case "stop_fail":
      return `${who} stopped on an API error`;
    case "agent_done":
      return `${who} ended: ${mark.outcome ?? "failure"}`;
    default:
      return String(mark.type ?? "event");
  }
}

/**
 * Markers on the strip: marks of one kind closer than `gap` pixels share a marker (the first one's seq, all
 * of them in its tooltip). Returns [{kind, x, seq, marks}], by x.
 */
export function placeMarks(marks, scale, gap = 6) {
  const open = new Map(); // kind -> the group still taking marks
  const groups = [];
  for (const mark of [...(marks ?? [])].sort((a, b) => a.ts - b.ts || a.seq - b.seq)) {
    if (!Number.isFinite(mark.ts) || !Number.isFinite(mark.seq)) continue;
    const kind = markKind(mark);
    const x = scale.x(mark.ts);
    const group = open.get(kind);
    if (group && x - group.x < gap) {
      group.marks.push(mark);
      continue;
    }
    const fresh = { kind, x, seq: mark.seq, marks: [mark] };
    open.set(kind, fresh);
    groups.push(fresh);
  }
  return groups.sort((a, b) => a.x - b.x);
}

const PAUSE = Object.freeze({ type: "pause" });
const PLAY = Object.freeze({ type: "play" });

/**
 * One replay's state: what the page shows (seq, ts), how it plays, and what to do with each frame. Every
 * method returns actions {apply: [{msg, silent}], send: [control]}: frames for the page's model (a silent one
 * draws no effects) and messages for the relay. Paused, the page holds events the relay sent before it heard
 * the pause, so what is shown never moves while paused; a step applies the next one.
 */
export class Player {
  constructor() {
    this.mode = "live"; // "live", "replay", or "refused" (the relay said no; its message stays up)
    this.speed = DEFAULT_SPEED;
    this.playing = true;
    this.stepping = false; // the next event is applied, then the relay is paused again
    this.seq = null; // the last seq applied
    this.ts = null; // its event time; null while only the strip can tell (see bannerText)
    this.target = null; // the seq the last seek asked for
    this.landing = null; // a seek opened one before its target: events up to here are part of the seek
    this.held = [];
    this.endSeq = null; // replay_end: the relay reached the end of the window here
    this.error = null; // {message, window} from the relay
    this.notice = null; // a control the relay did not take
    this.bounds = null; // the window as last heard: {first_seq, first_ts, last_seq, last_ts, ...}
  }

  get ended() {
    return this.mode === "replay" && this.endSeq !== null && this.held.length === 0 && this.seq >= this.endSeq;
  }

  /** The window, from /replay/window or a frame; the newer of two wins. */
  know(bounds) {
    if (!bounds || !Number.isFinite(bounds.first_seq)) return;
    if (this.bounds && this.bounds.epoch === bounds.epoch && this.bounds.last_seq > bounds.last_seq) return;
    this.bounds = bounds;
  }

  /**
   * The point to open a replay at to show the state right after `seq`; `at` is what the page holds now
   * ({seq, ts}). Inside the window it opens one before, so the event at `seq` comes first and says its time;
   * at the seq the page already holds, it opens there (nothing to redraw).
   */
  seek(seq, at = {}) {
    this._open(seq);
    if (seq === at.seq) {
      this.seq = seq;
      this.ts = at.ts ?? null;
      return String(seq);
    }
    const b = this.bounds;
    if (b && seq > b.first_seq && seq <= b.last_seq) {
      this.landing = seq;
      return String(seq - 1);
    }
    return String(seq);
  }

  /** A point as the relay reads it (a seq, t<ms>, an ISO time, -2h), opened as it is. */
  openAt(point) {
    const text = String(point);
    this._open(/^\d+$/.test(text) ? Number(text) : null);
    return text;
  }

  _open(target) {
    this.mode = "replay";
    this.target = target;
    this.landing = null;
    this.held = [];
    this.stepping = false;
    this.endSeq = null;
    this.error = null;
    this.notice = null;
  }

  /** One frame of the replay socket; `model` is what the page's model holds now ({seq, epoch}). */
  frame(msg, model = {}) {
    const out = { apply: [], send: [] };
    if (this.mode !== "replay" || !msg || typeof msg !== "object") return out;
    if (msg.type === "snapshot") {
      const window = msg.replay?.window;
      this.know(window);
      if (this.landing === null && msg.seq !== this.seq) {
        this.ts = window && msg.seq === window.first_seq ? window.first_ts : null;
      }
      this.seq = msg.seq;
      // The snapshot replaces the model, unless the model is at that very point already (a pause, a reconnect).
      const same = msg.seq === model.seq && msg.epoch === model.epoch;
      out.apply.push({ msg: same ? msg : { ...msg, reset: true }, silent: true });
      if (!this.playing && this.landing === null) out.send.push(PAUSE);
    } else if (msg.type === "event") {
      if (this.landing !== null) {
        this._apply(msg, out, true);
        if (msg.seq >= this.landing) {
          this.landing = null;
          if (!this.playing && !this.stepping) out.send.push(PAUSE); // not before: it could hold the landing back
        }
      } else if (this.stepping) {
        this.stepping = false;
        this._apply(msg, out, false);
        out.send.push(PAUSE);
      } else if (this.playing) {
        this._apply(msg, out, false);
      } else {
        this.held.push(msg);
      }
    } else if (msg.type === "replay_end") {
      this.endSeq = msg.seq;
    } else if (msg.type === "error") {
      if (msg.error === "bad_control") {
        this.notice = String(msg.message ?? msg.error);
      } else {
        this.refuse(msg.message ?? msg.error, msg.window);
      }
    }
    return out;
  }

  /** The relay refused the replay (an error frame, or close code 4404): final until the next seek or live. */
  refuse(message, window) {
    this.mode = "refused";
    this.error = { message: String(message || "the relay refused this replay"), window: window ?? null };
    this.know(window);
    this.held = [];
    this.stepping = false;
    this.landing = null;
  }

  play() {
    const out = { apply: [], send: [] };
    if (this.mode !== "replay") return out;
    this.playing = true;
    this.stepping = false;
    for (const msg of this.held) this._apply(msg, out, false);
    this.held = [];
    out.send.push(PLAY);
    return out;
  }

  pause() {
    const out = { apply: [], send: [] };
    const was = this.playing || this.stepping;
    this.playing = false;
    this.stepping = false;
    if (this.mode === "replay" && was && this.landing === null) out.send.push(PAUSE);
    return out;
  }

  /** Apply the next event, then stay paused. */
  step() {
    const out = { apply: [], send: [] };
    if (this.mode !== "replay") return out;
    const was = this.playing;
    this.playing = false;
    if (this.held.length > 0) {
      this._apply(this.held.shift(), out, false);
      if (was) out.send.push(PAUSE);
    } else if (!this.ended) {
      this.stepping = true;
      if (!was && this.landing === null) out.send.push(PLAY); // the next event comes, then a pause
    } else if (was) {
      out.send.push(PAUSE);
    }
    return out;
  }

  setSpeed(speed) {
    this.speed = speed;
    return { apply: [], send: this.mode === "replay" ? [{ type: "speed", speed }] : [] };
  }

  /** Back to the live stream: the next replay starts playing again. */
  live() {
    this._open(null);
    this.mode = "live";
    this.playing = true;
    this.seq = null;
    this.ts = null;
  }

  _apply(msg, out, silent) {
    out.apply.push({ msg, silent });
    this.seq = msg.seq;
    if (Number.isFinite(msg.data?.ts)) this.ts = msg.data.ts;
  }
}
