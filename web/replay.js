// Replay on the page (issue 12): a socket to /stream?replay=SEQ&speed=S that gives the page's model the state
// at SEQ, then the events after it at that pace; seeking opens a new one. While it runs, the live connection
// is stopped; "live" closes it and starts the live stream again from a fresh snapshot. What to apply, hold or
// send for each frame is Player's (timelinemodel.js); this moves frames and keeps the socket.
import { backoffDelay, messagesOf, streamUrl } from "./connection.js";
import { CLOSE_REPLAY_REFUSED, Player, parseSpeed } from "./timelinemodel.js";

const DISCONNECTED_AFTER = 4; // failed attempts before the badge says disconnected, as live does

/**
 * `apply(msg, silent)` gives a frame to the page's model (silent: no effects), `setStatus` sets the badge,
 * `connection()` is the live connection (stop/start). The page reads `player` and hears changes via on().
 */
export function createReplay({ model, apply, setStatus, connection }) {
  const player = new Player();
  const listeners = new Set();
  let socket = null;
  let opened = null; // {point, framed}: the point the socket was opened at, and whether a frame came yet
  let timer = null;
  let attempt = 0;
  let freshLive = false; // the first live snapshot after a replay replaces the model (unless at the same seq)
  let liveTs = null; // the time of the last live event: where a pause freezes the live view

  const notify = () => listeners.forEach((fn) => fn(player));

  function open(point) {
    clearTimeout(timer);
    drop();
    connection().stop();
    const url = new URL(streamUrl(location, null));
    url.searchParams.set("replay", point);
    url.searchParams.set("speed", String(player.speed));
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      retry();
      return;
    }
    socket = ws;
    opened = { point, framed: false };
    ws.onmessage = (e) => {
      if (ws === socket) receive(e.data);
    };
    ws.onclose = (e) => {
      if (ws !== socket) return;
      socket = null;
      closed(e);
    };
    setStatus("replay");
    notify();
  }

  function drop() {
    const ws = socket;
    socket = null; // frames still in flight on the old socket must not be applied
    ws?.close(1000, "seek");
  }

  function receive(text) {
    for (const msg of messagesOf(text)) {
      if (!opened.framed) {
        opened.framed = true;
        attempt = 0;
      }
      run(player.frame(msg, { seq: model.seq, epoch: model.epoch }));
      if (player.mode === "refused") setStatus("refused");
    }
  }

  function run({ apply: frames, send }) {
    for (const { msg, silent } of frames) apply(msg, silent);
    for (const control of send) {
      if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(control));
    }
    notify();
  }

  // 4404 (or an error frame before the close) is the relay's final word: show it and stay put.
  function closed(e) {
    if (player.mode === "refused" || e.code === CLOSE_REPLAY_REFUSED) {
      if (player.mode !== "refused") player.refuse(e.reason);
      setStatus("refused");
      notify();
      return;
    }
    retry();
  }

  // The relay restarted or the network dropped: come back where the page is, with backoff.
  function retry() {
    setStatus(attempt >= DISCONNECTED_AFTER ? "disconnected" : "reconnecting");
    const again = opened?.framed === false ? opened.point : null;
    timer = setTimeout(() => {
      if (again !== null || player.seq === null) open(again ?? String(player.target ?? 0));
      else open(player.seek(player.seq, { seq: model.seq, ts: player.ts }));
    }, backoffDelay(attempt++));
  }

  // The address bar says where the replay is, so a reload or a copied link comes back to it.
  function syncUrl(seq) {
    const params = new URLSearchParams(location.search);
    if (player.mode === "live") {
      params.delete("replay");
      params.delete("speed");
    } else {
      if (seq !== null && seq !== undefined) params.set("replay", String(seq));
      params.set("speed", String(player.speed));
    }
    const query = params.toString();
    history.replaceState(history.state, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
  }

  /** Show the state right after `seq`, then play on from there (or stay paused). */
  function seek(seq) {
    if (!Number.isFinite(seq)) return;
    const at = { seq: model.seq, ts: player.mode === "live" ? liveTs : player.ts };
    open(player.seek(seq, at));
    syncUrl(seq);
  }

  return {
    player,
    on: (fn) => listeners.add(fn),
    get active() {
      return player.mode !== "live";
    },

    /** Open the replay the page's URL asks for (`?replay=<seq|time>&speed=<n|max>`); false when it asks none. */
    fromUrl() {
      const params = new URLSearchParams(location.search);
      if (!params.has("replay") || params.has("share")) return false;
      const speed = params.get("speed");
      // A speed the relay would refuse goes to it as written: its error says what it takes.
      player.speed = speed === null ? player.speed : (parseSpeed(speed) ?? speed);
      open(player.openAt(params.get("replay")));
      return true;
    },

    /** The window, as the timeline fetched it: where seeks can open one event early. */
    know(window) {
      player.know(window);
    },

    seek,

    play() {
      if (player.mode === "replay") run(player.play());
    },

    /** Paused while live, the page freezes where it is: a replay at the seq it holds, paused. */
    pause() {
      if (player.mode === "replay") {
        run(player.pause());
        syncUrl(player.seq);
      } else if (player.mode === "live" && model.seq !== null) {
        player.playing = false;
        seek(model.seq);
      }
    },

    step() {
      run(player.step());
    },

    setSpeed(speed) {
      run(player.setSpeed(speed));
      if (player.mode !== "live") syncUrl(player.target ?? player.seq);
    },

    /** Close the replay and follow the live stream again, from a fresh snapshot. */
    live() {
      if (player.mode === "live") return;
      clearTimeout(timer);
      drop();
      opened = null;
      attempt = 0;
      player.live();
      freshLive = true;
      syncUrl(null);
      setStatus("connecting");
      notify();
      connection().start();
    },

    /** The model lost the thread during a replay: open again where it is. */
    resync() {
      if (model.seq !== null) seek(model.seq);
    },

    /** The live connection's resume point: none right after a replay, so the relay sends a fresh snapshot. */
    resume(params) {
      return freshLive ? null : params;
    },

    /** A live frame, before the model takes it: the first snapshot after a replay replaces the model. */
    fromLive(msg) {
      if (msg?.type === "event" && Number.isFinite(msg.data?.ts)) liveTs = msg.data.ts;
      if (!freshLive || msg?.type !== "snapshot") return msg;
      freshLive = false;
      liveTs = null;
      return msg.seq === model.seq && msg.epoch === model.epoch ? msg : { ...msg, reset: true };
    },
  };
}
