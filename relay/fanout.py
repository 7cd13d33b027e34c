"""One shared buffer of the live stream, read by every viewer at its own position.

Delivering an event to a relay's viewers costs one append, whatever their number: each viewer keeps only the
position of the next item it has to send. A viewer more than `backlog` items behind is closed as slow (its
writer is interrupted even while blocked in a send), as a full per-viewer queue did before. A writer that wakes
takes everything after its position at once and sends it as one frame; viewers in step take the same slice,
and its frame text is built once for all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

RESET = "reset"  # buffer marker: take a fresh snapshot (the hub could not fill a gap, or the epoch changed)
Item = tuple[int, str] | str  # (seq, envelope JSON) or RESET
FRAMES_CACHED = 16  # recent batch frames kept; viewers in step ask for the newest one or two
# Why a viewer is closed as slow (4008): the close frame's reason.
BEHIND = "fell behind the live stream; reconnect for a fresh snapshot"
SEND_TIMED_OUT = "not reading: send timed out; reconnect for a fresh snapshot"
SHED = "relay over capacity: the slowest viewers are closed; reconnect to resume"


@dataclass(eq=False)
class Viewer:
    pos: int = 0  # position in the buffer of the next item to send
    fell_behind: asyncio.Event = field(default_factory=asyncio.Event)
    on_overflow: Callable[[], object] | None = None  # interrupts the writer even while it is blocked in a send
    sending_since: float | None = None  # loop time the send in progress started (read by the relay's watchdog)
    wake: asyncio.Future[bool] | None = None  # set while the writer waits: True, items came; False, quiet
    why: str = ""  # why it was closed as slow (the first reason wins)

    @property
    def shed(self) -> bool:
        """Closed because the relay was over capacity (relay/overload.py)."""
        return self.why == SHED

    def overflow(self, why: str = BEHIND) -> None:
        """Close as slow: the viewer reconnects for a resume or a fresh snapshot."""
        if self.fell_behind.is_set():
            return
        self.why = why
        self.fell_behind.set()
        if self.on_overflow is not None:
            self.on_overflow()


class Fanout:
    """The items the hub delivered, the viewers reading them, and the batch frames built from them."""

    def __init__(self, backlog: int) -> None:
        self.backlog = backlog  # items a viewer may be behind before it is closed as slow
        self.viewers: set[Viewer] = set()
        self._items: list[Item] = []
        self._base = 0  # position of _items[0]
        self._waiting: set[Viewer] = set()
        self._frames: dict[tuple[int, int], str] = {}

    @property
    def head(self) -> int:
        """The position the next item will take."""
        return self._base + len(self._items)

    def add(self, viewer: Viewer) -> None:
        viewer.pos = self.head  # the viewer's snapshot or resume covers what came before
        self.viewers.add(viewer)

    def remove(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)
        self._waiting.discard(viewer)

    def push(self, item: Item) -> None:
        self._items.append(item)

    def behind(self, viewer: Viewer) -> int:
        return self.head - viewer.pos

    def flush(self) -> None:
        """After the hub pushed items: close the viewers now too far behind, wake the waiting ones."""
        head, limit = self.head, self.backlog
        for viewer in self.viewers:
            if head - viewer.pos > limit:
                viewer.overflow()
        for viewer in self._waiting:
            if viewer.wake is not None and not viewer.wake.done():
                viewer.wake.set_result(True)
        self._waiting.clear()
        # Nobody reads further back than the backlog (such viewers are closed): keep about two backlogs.
        if len(self._items) > 2 * limit + 64:
            cut = len(self._items) - limit
            del self._items[:cut]
            self._base += cut

    async def take(self, viewer: Viewer, wait_s: float) -> tuple[int, list[Item]] | None:
        """The viewer's next items (and the position of the first), waiting up to wait_s; None: nothing came."""
        if viewer.pos >= self.head:
            loop = asyncio.get_running_loop()
            wake = viewer.wake = loop.create_future()
            # A bare timer, not asyncio.timeout: a writer waits once per frame, and the context manager's
            # bookkeeping was 9% of a busy relay's CPU.
            timer = loop.call_later(wait_s, _quiet, wake)
            self._waiting.add(viewer)
            try:
                if not await wake:
                    return None
            finally:
                timer.cancel()
                self._waiting.discard(viewer)
                viewer.wake = None
        start = viewer.pos
        if start < self._base:  # trimmed away: only a viewer already closed as slow gets here
            viewer.overflow()
            return None
        items = self._items[start - self._base :]
        viewer.pos = self.head
        return start, items

    def frame(self, start: int, texts: list[str]) -> str:
        """One frame for consecutive envelopes taken from `start`: alone, or a JSON array; built once per slice."""
        if len(texts) == 1:
            return texts[0]
        key = (start, len(texts))
        text = self._frames.get(key)
        if text is None:
            if len(self._frames) >= FRAMES_CACHED:
                self._frames.clear()
            text = self._frames[key] = batch(texts)
        return text


def _quiet(wake: asyncio.Future[bool]) -> None:
    if not wake.done():
        wake.set_result(False)


def batch(texts: list[str]) -> str:
    """Several messages in one frame: a JSON array, applied in order (a lone message goes alone)."""
    return texts[0] if len(texts) == 1 else "[" + ",".join(texts) + "]"


__all__ = ("BEHIND", "RESET", "SEND_TIMED_OUT", "SHED", "Fanout", "Item", "Viewer", "batch")
