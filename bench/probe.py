"""How long a relay takes to answer /health, /ready and /stats while a cell loads it, timed from a thread.

A relay past its capacity must keep answering them within a second (issue 13): an orchestrator's health check
or a monitor polling /stats is what notices a starved event loop first. /health is asked every 0.25 s, /ready
and /stats every second (alternately, half a second apart), each over a fresh connection as a probe would.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from typing import Any

EVERY_S = 0.25
TIMEOUT_S = 5.0  # a request still unanswered then is recorded as this long, and counted as unanswered


class Probe:
    """with Probe(base) as probe: ...; probe.result() is the slowest answer of each path, in ms."""

    def __init__(self, base: str, every: float = EVERY_S, timeout: float = TIMEOUT_S) -> None:
        self.base = base
        self.every = every
        self.timeout = timeout
        self.times: dict[str, list[float]] = {"/health": [], "/ready": [], "/stats": []}
        self.unanswered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay-probe", daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 1)

    def _run(self) -> None:
        tick = 0
        start = time.monotonic()
        while not self._stop.is_set():
            self._ask("/health")
            if tick % 4 == 1:
                self._ask("/ready")
            elif tick % 4 == 3:
                self._ask("/stats")
            tick += 1
            self._stop.wait(max(0.0, start + tick * self.every - time.monotonic()))

    def _ask(self, path: str) -> None:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(self.base + path, timeout=self.timeout) as r:
                r.read()
        except urllib.error.HTTPError:
            pass  # an answer all the same (a 503 from /ready is the relay saying why it is not ready)
        except OSError:
            self.unanswered += 1
            self.times[path].append(self.timeout * 1000)
            return
        self.times[path].append((time.perf_counter() - started) * 1000)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            f"{path[1:]}_ms_max": round(max(times), 1) if times else None for path, times in self.times.items()
        }
        out["samples"] = sum(len(t) for t in self.times.values())
        out["unanswered"] = self.unanswered
        return out
