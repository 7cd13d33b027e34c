"""One viewer's side of /stream: snapshot or resume, then the live stream in seq order, several events a frame.

A frame is one message (a JSON object) or a JSON array of messages applied in order. A writer that wakes
takes every item queued for it and sends them at once, so a busy relay sends fewer, larger frames instead of
falling behind, and a lone event still goes out alone at once. Slow-viewer rules hold per viewer: a viewer
too far behind, or whose send stays blocked, is interrupted (relay/fanout.py, the watchdog below).
"""

from __future__ import annotations

import asyncio

from starlette.websockets import WebSocket

from .fanout import SEND_TIMED_OUT, Item, Viewer, batch
from .hub import Hub, session_of
from .settings import Settings
from .share import Share

MAX_BATCH = 512  # envelopes in one frame (about 150 KiB): a client's frame limit is never near


async def write(
    ws: WebSocket,
    hub: Hub,
    viewer: Viewer,
    settings: Settings,
    since: int | None,
    epoch: str | None,
    share: Share | None = None,
) -> tuple[int, str]:
    """Snapshot (or resume), then every event in seq order; returns the close code and reason.

    A share viewer gets its session's events only, with their real seqs. Before an event that follows
    skipped ones its frame carries a ping with the seq just before it, so its seq check stays gap-free.
    """
    loop = asyncio.get_running_loop()
    ping_every = settings.ping_interval_s
    fanout = hub.fanout
    skipped = False  # a share viewer passed over events since its last message
    sent_at = loop.time()
    last = 0

    async def send(text: str) -> None:
        nonlocal sent_at
        # No timer per message: the watchdog interrupts a send that has been blocked for send_timeout_s.
        viewer.sending_since = sent_at = loop.time()
        await ws.send_text(text)
        viewer.sending_since = None

    def ping(seq: int) -> str:
        nonlocal skipped
        skipped = False
        return f'{{"type":"ping","seq":{seq},"epoch":"{epoch}"}}'

    async def snapshot(reset: bool) -> None:
        nonlocal skipped, last, epoch
        snap = await hub.snapshot()
        await send(snap.message(reset=reset, share=share))
        skipped = False
        last, epoch = snap.seq, snap.epoch

    async def shared(session: str, events: list[tuple[int, str]]) -> None:
        """A share viewer's part of some events: its session's, a ping before any that follow skipped ones."""
        nonlocal skipped
        out: list[str] = []
        for seq, text in events:
            if session_of(text) != session:
                skipped = True
                continue
            if skipped:
                out.append(ping(seq - 1))
            out.append(text)
        if skipped and loop.time() - sent_at >= ping_every:  # a busy other session: keep the resume point fresh
            out.append(ping(events[-1][0]))
        for i in range(0, len(out), MAX_BATCH):
            await send(batch(out[i : i + MAX_BATCH]))

    async def run(start: int, events: list[tuple[int, str]]) -> None:
        """Consecutive events taken from position `start` (-1: not from the buffer), in frames."""
        if share is not None:
            await shared(share.session, events)
            return
        for i in range(0, len(events), MAX_BATCH):
            texts = [text for _, text in events[i : i + MAX_BATCH]]
            await send(fanout.frame(start + i, texts) if start >= 0 else batch(texts))

    async def items(start: int, taken: list[Item]) -> None:
        """What the writer took from the buffer, in order: runs of new events, snapshots where needed."""
        nonlocal last
        events: list[tuple[int, str]] = []
        run_start = start
        for pos, item in enumerate(taken, start):
            if isinstance(item, str) or item[0] != last + 1:
                if events:
                    await run(run_start, events)
                    events = []
                run_start = pos + 1
                # A reset, or a hole (cannot happen while the hub keeps order): a fresh snapshot. Older: sent.
                if isinstance(item, str) or item[0] > last:
                    await snapshot(reset=True)
                continue
            if not events:
                run_start = pos
            events.append(item)
            last = item[0]
        if events:
            await run(run_start, events)

    replayed = await hub.resume(since, epoch, settings.replay_limit) if since is not None and epoch else None
    if replayed is None:
        await snapshot(reset=since is not None)
    else:
        last = since or 0
        if replayed:
            await run(-1, replayed)
            last = replayed[-1][0]
        if skipped:
            await send(ping(last))
    while True:
        taken = await fanout.take(viewer, ping_every)
        if taken is None:
            if viewer.fell_behind.is_set():
                return 0, ""  # the stream closes it as slow
            await send(ping(last))
            continue
        await items(*taken)


async def watchdog(hub: Hub, send_timeout_s: float) -> None:
    """Interrupt every writer whose send has been blocked for send_timeout_s (checked 10 times per timeout).

    One timer for the whole relay instead of one per message per viewer, which under load cost a large part
    of the relay's CPU. A blocked send is interrupted between send_timeout_s and 1.1 x send_timeout_s.
    """
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(send_timeout_s / 10)
        late = loop.time() - send_timeout_s
        for viewer in list(hub.viewers):
            since = viewer.sending_since
            if since is not None and since <= late:
                viewer.overflow(SEND_TIMED_OUT)  # cancels the writer, as a full queue does


__all__ = ("MAX_BATCH", "watchdog", "write")
