// The WebSocket to /stream: reconnects with backoff, resumes where the model left off.
// What a message means is the model's business; this only splits frames into messages and reports the status.
export const BACKOFF_MIN_MS = 1000;
export const BACKOFF_MAX_MS = 30000;
const DISCONNECTED_AFTER = 4; // failed attempts (8 to 15 s of backoff) before the badge says disconnected
// Close codes after which reconnecting cannot help: the relay will say the same again.
export const CLOSE_SHARE_EXPIRED = 4401;
const FINAL_CODES = new Set([CLOSE_SHARE_EXPIRED]);

/**
 * The messages of one frame: a busy relay sends several events as one JSON array, applied in order; a lone
 * message comes as itself. A frame that is not JSON carries nothing.
 */
export function messagesOf(text) {
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [];
  }
  return Array.isArray(parsed) ? parsed : [parsed];
}

/**
 * `resume()` gives the model's resume point, `onMessage(msg)` gets every message of the current socket,
 * `onStatus(status)` hears connecting / connected / reconnecting / disconnected, and `onEnd(code, reason)`
 * hears a final close (a share link expired), after which the connection stays closed.
 */
export function createConnection({ resume, onMessage, onStatus, onEnd = () => {} }) {
  let socket = null;
  let attempt = 0;
  let timer = null;

  function connect() {
    let ws;
    try {
      ws = new WebSocket(streamUrl(location, resume()));
    } catch {
      retry();
      return;
    }
    socket = ws;
    ws.onopen = () => {
      // A quiet resume may bring no frame for a while: being connected is what resets the backoff.
      attempt = 0;
      onStatus("connected");
    };
    ws.onmessage = (e) => {
      for (const msg of messagesOf(e.data)) {
        if (ws !== socket) return; // a message asked for a resync: the rest of the frame belongs to the old socket
        onMessage(msg);
      }
    };
    // Covers network loss, a relay restart and the relay dropping a slow viewer (4008) alike.
    ws.onclose = (e) => {
      if (ws !== socket) return;
      socket = null;
      if (FINAL_CODES.has(e.code)) onEnd(e.code, e.reason);
      else retry();
    };
  }

  function retry() {
    onStatus(attempt >= DISCONNECTED_AFTER ? "disconnected" : "reconnecting");
    timer = setTimeout(connect, backoffDelay(attempt++));
  }

  // The model lost the thread (a gap, a new epoch): drop this socket and come back with a resume point.
  function resync() {
    const ws = socket;
    socket = null; // frames still in flight on the old socket must not be applied
    ws?.close(1000, "resync");
    retry();
  }

  // A replay takes the page over (replay.js): close without reconnecting, until start() is called again.
  function stop() {
    clearTimeout(timer);
    const ws = socket;
    socket = null;
    attempt = 0;
    ws?.close(1000, "replay");
  }

  return { start: connect, resync, stop };
}

/** Reconnect delay: doubles from 1 s up to 30 s, with equal jitter so viewers do not reconnect in lockstep. */
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, attempt));
  return Math.round(base / 2 + (base / 2) * random());
}

/** The WebSocket URL for a page at `loc` (a Location or URL), resuming from `resume` when given. */
export function streamUrl(loc, resume) {
  const params = new URLSearchParams();
  const page = new URLSearchParams(loc.search);
  // A share link is the only credential a shared view has; a token is the full view's.
  for (const name of ["share", "token"]) if (page.get(name)) params.set(name, page.get(name));
  if (resume) {
    params.set("since", String(resume.since));
    params.set("epoch", String(resume.epoch));
  }
  const query = params.toString();
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/stream${query ? `?${query}` : ""}`;
}
