"""Past its capacity a relay sheds its slowest viewers instead of going dark.

Writers batch (relay/writer.py), so a busy relay sends fewer, larger frames; but enough viewers on a fast
enough stream still take more CPU than there is, and then every callback waits longer, /health and /ready
included. A monitor measures how late the event loop runs a timer; while it is later than `max_lag_s`, it
closes the viewers furthest behind (a tenth at a time, at least one) with 4008 — from the second late check
in a row, so that one pause of the whole machine (a busy neighbour, a swap-in) closes nobody, the code of a slow viewer:
they reconnect with a resume point, and a load balancer can send them to another relay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from .fanout import SHED, Viewer

log = logging.getLogger("relay")

CHECK_EVERY_S = 0.1
SHED_SHARE = 10  # shed 1/SHED_SHARE of the viewers per late check
# Only a viewer that is slow itself is shed: blocked in a send (its socket is full: it does not read as fast as it
# is sent to) or this many items behind. A loop late while every viewer keeps up is the machine pausing the relay
# (a busy neighbour), not viewers costing more than the relay has; closing them would not help.
MIN_BEHIND = 128


def to_shed(viewers: Iterable[tuple[Viewer, int, float]], total: int) -> list[Viewer]:
    """The viewers to close on one late check, from (viewer, items behind, seconds blocked in a send): the
    tenth (at least one) of the slow ones, those blocked longest first, then those furthest behind."""
    count = max(1, total // SHED_SHARE)
    slow = [item for item in viewers if item[2] > 0 or item[1] >= MIN_BEHIND]
    slow.sort(key=lambda item: (item[2], item[1]), reverse=True)
    return [viewer for viewer, _, _ in slow[:count]]


async def monitor(
    viewers: Callable[[], set[Viewer]], behind: Callable[[Viewer], int], stats: dict[str, int], max_lag_s: float
) -> None:
    """Every CHECK_EVERY_S: how late did this timer fire? Past max_lag_s, shed the slowest viewers."""
    loop = asyncio.get_running_loop()
    late = 0
    while True:
        due = loop.time() + CHECK_EVERY_S
        await asyncio.sleep(CHECK_EVERY_S)
        lag = loop.time() - due
        stats["loop_lag_ms"] = round(lag * 1000)
        late = late + 1 if lag > max_lag_s else 0
        if late < 2:
            continue
        current = [v for v in viewers() if not v.fell_behind.is_set()]
        if not current:
            continue
        now = loop.time()
        blocked = (now - v.sending_since if v.sending_since is not None else 0.0 for v in current)
        shed = to_shed(zip(current, map(behind, current), blocked, strict=True), len(current))
        if not shed:
            continue
        stats["shed"] += len(shed)
        log.warning(
            "event loop %.0f ms late: over capacity, closing the %d slowest of %d viewers (4008)",
            lag * 1000,
            len(shed),
            len(current),
        )
        for viewer in shed:
            viewer.overflow(SHED)


__all__ = ("monitor", "to_shed")
