"""A viewer the way the page is one: applies snapshot + events to an alive set, resumes with since/epoch."""

from __future__ import annotations

import asyncio
import json
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI


def messages_of(frame: str | bytes) -> list[dict[str, Any]]:
    """The messages of one frame: a JSON object, or a JSON array of them (a busy relay batches events)."""
    parsed = json.loads(frame)
    return parsed if isinstance(parsed, list) else [parsed]


_pending: WeakKeyDictionary[Any, deque[dict[str, Any]]] = WeakKeyDictionary()


async def next_message(ws: Any, within: float = 10.0) -> dict[str, Any]:
    """The next message on a socket, whether the relay sent it alone or in a batch (within: per frame)."""
    queue = _pending.setdefault(ws, deque())
    while not queue:
        queue.extend(messages_of(await asyncio.wait_for(ws.recv(), within)))
    return queue.popleft()


@dataclass
class ViewerModel:
    alive: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq: int | None = None
    epoch: str | None = None
    snapshots: int = 0
    resets: int = 0
    reconnects: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    holes: list[tuple[int, int]] = field(default_factory=list)  # (expected seq, received seq): must stay empty
    duplicates: int = 0
    close_codes: list[int] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)  # set at the first snapshot

    def apply(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "snapshot":
            self.snapshots += 1
            self.resets += bool(message.get("reset"))
            self.alive = {f"{r['session_id']}/{r['agent_id']}": r for r in message["alive"]}
            self.seq, self.epoch = message["seq"], message["epoch"]
            self.connected.set()
        elif kind == "event":
            assert self.seq is not None
            if message["seq"] <= self.seq:
                self.duplicates += 1
                return
            if message["seq"] != self.seq + 1:
                self.holes.append((self.seq + 1, message["seq"]))
            self.seq = message["seq"]
            self.events.append(message["data"])
            self._apply_event(message["data"])

    def _apply_event(self, data: dict[str, Any]) -> None:
        key = f"{data['session_id']}/{data['agent_id']}"
        kind = data["type"]
        if kind in ("session_start", "agent_spawn"):
            self.alive[key] = data
        elif kind == "agent_update":
            previous = data.get("previous_id")
            old = self.alive.pop(f"{data['session_id']}/{previous}", None) if previous is not None else None
            self.alive[key] = {**(old or self.alive.get(key) or {}), **data}  # a re-key: the same agent goes on
        elif kind == "agent_done":
            self.alive.pop(key, None)
        elif kind == "session_end":
            for k in [k for k in self.alive if k.startswith(data["session_id"] + "/")]:
                del self.alive[k]
        elif key not in self.alive:
            self.alive[key] = data  # the page creates unknown agents too

    @property
    def keys(self) -> set[str]:
        return set(self.alive)


async def follow(url: str, model: ViewerModel, stop: asyncio.Event, max_queue: int | None = None) -> None:
    """Stay connected until stop is set, reconnecting with jitter and resuming from the last applied seq."""
    delay = 0.05
    while not stop.is_set():
        target = url
        if model.seq is not None and model.epoch:
            target = f"{url}?since={model.seq}&epoch={model.epoch}"
        try:
            async with websockets.connect(target, max_queue=max_queue, open_timeout=5) as ws:
                delay = 0.05
                while not stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.2)
                    except TimeoutError:
                        continue
                    for message in messages_of(raw):
                        model.apply(message)
        except ConnectionClosed as closed:
            if closed.rcvd is not None:
                model.close_codes.append(closed.rcvd.code)
        except (OSError, InvalidStatus, InvalidURI, TimeoutError):
            pass
        if stop.is_set():
            return
        model.reconnects += 1
        await asyncio.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 1.0)
