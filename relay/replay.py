"""Replay: the state at any seq or time of the retained window, then its envelopes at a chosen speed.

`/stream?replay=<seq | ms | ISO time | -2h>&speed=<1..100 | max>` speaks the live protocol: a snapshot (the
keyframe at or before the point, plus the envelopes up to it, applied as contract/viewstate.py says), then
`event` messages with their real seqs, paced by their timestamps divided by the speed (gaps longer than
MAX_GAP_S are shortened: idle time is skipped), or as fast as the viewer reads with `max`. The viewer may send
`{"type": "pause"}`, `{"type": "play"}` and `{"type": "speed", "speed": 10}`; seeking is a new connection.
At the end of the window it sends `{"type": "replay_end", "seq": N}` and follows new envelopes as they come.
Reads are bounded (CHUNK envelopes at a time) and never touch the hub: live viewers do not notice a replay.
`/replay/window` says what can be replayed: bounds, events per minute, and the markers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from contract import (
    LOG_FIELD,
    MARK_FIELD,
    META_EPOCH,
    META_SEQ,
    META_TRIMMED,
    META_TRIMMED_AT,
    Keys,
    duration_setting,
)
from contract.viewstate import ViewState

from .hub import entry_seq, stream_field, text_of

CHUNK = 500  # envelopes per read
MAX_GAP_S = 2.0  # the longest pause between two events at 1x: longer idle time is skipped
MARKS_SHOWN = 5000  # the newest markers /replay/window lists
SPEEDS = (1.0, 100.0)


class OutsideWindow(Exception):
    """A replay point the retained window does not hold; the message gives the window's bounds."""

    def __init__(self, message: str, window: dict[str, Any]) -> None:
        super().__init__(message)
        self.window = window


@dataclass(frozen=True)
class Point:
    seq: int | None = None
    ts: int | None = None  # ms


def parse_point(value: str, now_ms: int) -> Point:
    """`1234` (a seq), `t1764400000000` or an ISO time (a time), `-2h` (that long ago)."""
    text = value.strip()
    if text.isdigit() and len(text) <= 18:
        return Point(seq=int(text))
    if text.startswith("t") and text[1:].isdigit():
        return Point(ts=int(text[1:]))
    if text.startswith("-"):
        return Point(ts=now_ms - int(duration_setting("replay", text[1:], 0.0) * 1000))
    try:
        return Point(ts=int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000))
    except ValueError:
        raise ValueError(
            f"replay has value {value[:60]!r}: expected a seq (1234), a time (t<ms> or 2026-11-29T10:00:00Z) "
            "or an age (-2h)"
        ) from None


def parse_speed(value: str | None) -> float | None:
    """A speed from 1 to 100 (times real time), or None for `max` (as fast as the viewer reads)."""
    if value is None or value == "":
        return 1.0
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        speed = 0.0
    if not SPEEDS[0] <= speed <= SPEEDS[1]:
        raise ValueError(f"speed has value {value[:20]!r}: expected 1 to 100, or max")
    return speed


class Window:
    """Reads of the retained window; every one bounded."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def bounds(self) -> dict[str, Any]:
        """The window: first and last seq and time, epoch, and how it was last cut."""
        k = self.keys
        meta = await self.redis.hmget(k.meta, [META_SEQ, META_EPOCH, META_TRIMMED, META_TRIMMED_AT])
        first: Any = await self.redis.zrange(k.keyframe_times, 0, 0, withscores=True)
        last_seq = int(text_of(meta[0] or b"0"))
        out: dict[str, Any] = {
            "epoch": text_of(meta[1] or b"") or None,
            "first_seq": int(first[0][0]) if first else None,
            "first_ts": int(first[0][1]) if first else None,
            "last_seq": last_seq,
            "last_ts": None,
            "trimmed": text_of(meta[2] or b"") or None,
            "trimmed_at": int(text_of(meta[3])) if meta[3] else None,
        }
        newest: Any = await self.redis.xrevrange(k.log, "+", "-", count=1)
        if newest:
            out["last_ts"] = _event(newest[0][1]).get("ts")
        elif out["first_ts"] is not None:
            out["last_ts"] = out["first_ts"]
        return out

    async def overview(self) -> dict[str, Any]:
        """/replay/window: the bounds, events and failures per minute, and the newest markers."""
        out = await self.bounds()
        raw: Any = await self.redis.hgetall(self.keys.timeline)
        minutes: dict[int, list[int]] = {}
        for name, count in raw.items():
            minute, _, kind = text_of(name).partition(":")
            if minute.isdigit() and kind in ("e", "f"):
                minutes.setdefault(int(minute), [0, 0])[0 if kind == "e" else 1] = int(count)
        out["minutes"] = [[m, e, f] for m, (e, f) in sorted(minutes.items())]
        marks: Any = await self.redis.xrevrange(self.keys.marks, "+", "-", count=MARKS_SHOWN)
        out["marks"] = [
            {"seq": entry_seq(entry_id), **json.loads(text_of(stream_field(fields, MARK_FIELD)))}
            for entry_id, fields in reversed(marks)
        ]
        return out

    async def resolve(self, point: Point) -> tuple[int, dict[str, Any]]:
        """The seq a point stands for, and the window's bounds; OutsideWindow when it is not in the window."""
        window = await self.bounds()
        first, last = window["first_seq"], window["last_seq"]
        if first is None:
            raise OutsideWindow("nothing to replay yet: the window is empty", window)
        if point.seq is not None:
            if not first <= point.seq <= last:
                raise OutsideWindow(
                    f"seq {point.seq} is outside the replay window: seqs {first} to {last} "
                    f"({_when(window['first_ts'])} to {_when(window['last_ts'])}); ask for one inside it",
                    window,
                )
            return point.seq, window
        assert point.ts is not None
        if point.ts < (window["first_ts"] or 0) or (window["last_ts"] is not None and point.ts > window["last_ts"]):
            raise OutsideWindow(
                f"{_when(point.ts)} is outside the replay window: {_when(window['first_ts'])} to "
                f"{_when(window['last_ts'])} (seqs {first} to {last}); ask for a time inside it",
                window,
            )
        return await self._seq_at(point.ts, first, last), window

    async def _seq_at(self, ts: int, first: int, last: int) -> int:
        """The last seq whose event time is at or before ts: from the keyframe written before it, forward."""
        kf: Any = await self.redis.zrevrangebyscore(self.keys.keyframe_times, ts, "-inf", start=0, num=1)
        seq = max(first, int(kf[0]) if kf else first)
        while seq < last:
            entries: Any = await self.redis.xrange(self.keys.log, f"{seq + 1}-0", "+", count=CHUNK)
            if not entries:
                break
            for entry_id, fields in entries:
                if (_event(fields).get("ts") or 0) > ts:
                    return seq
                seq = entry_seq(entry_id)
        return seq

    async def state_at(self, seq: int) -> tuple[ViewState, str]:
        """The alive records as they were right after `seq`: the keyframe at or before it plus what followed."""
        found: Any = await self.redis.xrevrange(self.keys.keyframes, f"{seq}-1", "-", count=1)
        if not found:
            raise OutsideWindow(f"no keyframe at or before seq {seq}", await self.bounds())
        entry_id, fields = found[0]
        state = ViewState.from_alive(json.loads(text_of(stream_field(fields, "alive"))))
        epoch = text_of(stream_field(fields, "epoch"))
        at = entry_seq(entry_id)
        while at < seq:
            entries: Any = await self.redis.xrange(self.keys.log, f"{at + 1}-0", f"{seq}-0", count=CHUNK)
            if not entries:
                raise OutsideWindow(f"the log no longer holds seq {at + 1}", await self.bounds())
            for entry_id, fields in entries:
                state.apply(_event(fields))
                at = entry_seq(entry_id)
        return state, epoch

    async def after(self, seq: int, count: int = CHUNK) -> list[tuple[int, str]]:
        entries: Any = await self.redis.xrange(self.keys.log, f"{seq + 1}-0", "+", count=count)
        return [(entry_seq(i), text_of(stream_field(f, LOG_FIELD))) for i, f in entries]


class Player:
    """One viewer's replay: pace, pause and speed, as the viewer asks."""

    def __init__(self, speed: float | None) -> None:
        self.speed = speed  # None: as fast as the viewer reads
        self.playing = asyncio.Event()
        self.playing.set()
        self.changed = asyncio.Event()

    def control(self, message: str) -> str | None:
        """Apply a viewer's message; an error text when it is not one we know."""
        try:
            body = json.loads(message)
            kind = body.get("type")
        except (ValueError, AttributeError):
            return "expected a JSON object with a type"
        if kind == "pause":
            self.playing.clear()
        elif kind == "play":
            self.playing.set()
        elif kind == "speed":
            try:
                self.speed = parse_speed(str(body.get("speed")))
            except ValueError as exc:
                return str(exc)
        else:
            return f"unknown replay control {str(kind)[:40]!r}: expected pause, play or speed"
        self.changed.set()
        return None

    async def wait(self, gap_ms: float) -> None:
        """The pause before the next event at the current speed (a speed change re-times it)."""
        await self.playing.wait()
        if self.speed is None or gap_ms <= 0:
            return
        deadline = time.monotonic() + min(gap_ms / 1000, MAX_GAP_S) / self.speed
        while (left := deadline - time.monotonic()) > 0:
            self.changed.clear()
            try:
                async with asyncio.timeout(left):
                    await self.changed.wait()
            except TimeoutError:
                return
            await self.playing.wait()


async def play(
    window: Window,
    start: int,
    player: Player,
    send: Callable[[str], Awaitable[None]],
    idle_poll_s: float = 1.0,
) -> None:
    """Send the envelopes after `start`, paced; at the end of the window say so once and follow new ones."""
    last, last_ts, ended = start, None, False
    while True:
        batch = await window.after(last)
        if not batch:
            if not ended:
                ended = True
                await send(json.dumps({"type": "replay_end", "seq": last}))
            await asyncio.sleep(idle_poll_s)
            continue
        for seq, text in batch:
            ts = _event_text_ts(text)
            if last_ts is not None and ts is not None:
                await player.wait(ts - last_ts)
            else:
                await player.playing.wait()
            await send(text)
            last, last_ts = seq, ts if ts is not None else last_ts


def _event_text_ts(envelope: str) -> int | None:
    try:
        ts = json.loads(envelope)["data"]["ts"]
    except (ValueError, KeyError, TypeError):
        return None
    return ts if isinstance(ts, int) else None


def _event(fields: Any) -> dict[str, Any]:
    try:
        data = json.loads(text_of(stream_field(fields, LOG_FIELD)))["data"]
    except (ValueError, KeyError, TypeError, RedisError):
        return {}
    return data if isinstance(data, dict) else {}


def _when(ts: int | None) -> str:
    if ts is None:
        return "now"
    return datetime.fromtimestamp(ts / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
