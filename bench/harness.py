"""Running the system under test: agentwatch's real ingest and relay processes, or the naive model, on a private
redis-server; and one measured run of the appender against viewers in their own process."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cluster import ClusterTarget
from bench.common import PYTHON, ROOT, CpuMeter, rss_kib
from contract import Keys
from tests.stack import Proc, RedisServer, free_port, start_ingest, start_relay, wait_for


@dataclass
class System:
    """ingest + one or more relays (agentwatch or naive) on one Redis (or Cluster), reading one events file."""

    kind: str  # "agentwatch" or "naive"
    redis: RedisServer | ClusterTarget
    events_file: Path
    prefix: str
    ingest: Proc
    relays: list[Proc]
    bases: list[str]
    procs: list[Proc] = field(default_factory=list)

    @property
    def ws_urls(self) -> list[str]:
        return [b.replace("http://", "ws://") + "/stream" for b in self.bases]

    def pids(self) -> dict[str, int]:
        if isinstance(self.redis, ClusterTarget):
            redis_pid = self.redis.pid_for(self.prefix)  # the master of the prefix's slot
        else:
            redis_pid = self.redis.proc.pid  # type: ignore[union-attr]
        out = {"ingest": self.ingest.proc.pid, "redis-server": redis_pid}
        for i, relay in enumerate(self.relays):
            out["relay" if len(self.relays) == 1 else f"relay{i + 1}"] = relay.proc.pid
        return out

    def relay_stats(self, i: int = 0) -> dict[str, Any]:
        with urllib.request.urlopen(self.bases[i] + "/stats", timeout=10) as r:
            return json.load(r)  # type: ignore[no-any-return]

    def lines_ingested(self) -> int:
        return int(self.redis.cli("HGET", Keys.for_url(self.prefix, self.redis.url).stats, "lines").strip() or 0)

    def relay_rss_kib(self, i: int = 0) -> int:
        return rss_kib(self.relays[i].proc.pid)

    def drain(self, timeout: float = 120.0) -> float:
        """Wait until ingest has committed every line of the file and no relay holds a queued event.

        Run between cells, so that a saturated cell's backlog never lands on the next one. Returns the seconds
        waited (the backlog the last cell left behind).
        """
        start = time.monotonic()
        total = self.events_file.read_bytes().count(b"\n")
        deadline = start + timeout
        while time.monotonic() < deadline:
            queued = sum(self.relay_stats(i)["queued"] for i in range(len(self.relays)))
            if self.lines_ingested() >= total and queued == 0:
                break
            time.sleep(0.1)
        return round(time.monotonic() - start, 1)


def _health(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/health", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def system(
    kind: str,
    redis: RedisServer | ClusterTarget,
    work: Path,
    relays: int = 1,
    setup: bytes = b"",
    events_file: Path | None = None,
    watch_step_ms: int | None = None,
) -> Iterator[System]:
    """Start ingest and relays of `kind` on a fresh prefix; `setup` lines are ingested first.

    The events file is a new one holding `setup`, or `events_file` as it is (two systems can read one file).
    """
    prefix = "b" + uuid.uuid4().hex[:10]
    if events_file is None:
        events_file = work / f"{prefix}.jsonl"
        events_file.write_bytes(setup)
    else:
        setup = events_file.read_bytes()
    started: list[Proc] = []
    try:
        if kind == "agentwatch" and watch_step_ms is not None:
            args = ["--redis-url", redis.url, "--events-file", str(events_file), "--prefix", prefix, "--from", "start"]
            ingest = Proc([PYTHON, "-m", "bench.ingest_variant", "--watch-step-ms", str(watch_step_ms), *args])
            started.append(ingest)
            ingest.wait_line("ingest: reading")
        elif kind == "agentwatch":
            ingest = start_ingest(redis.url, events_file, prefix, "--from", "start")
            started.append(ingest)
        if kind == "agentwatch":
            bases = []
            procs = []
            for _ in range(relays):
                relay, base = start_relay(redis.url, prefix)
                started.append(relay)
                procs.append(relay)
                bases.append(base)
        else:
            common = ["--redis-url", redis.url, "--prefix", prefix]
            ingest = Proc([PYTHON, "-m", "bench.naive", "ingest", *common, "--events-file", str(events_file)])
            started.append(ingest)
            ingest.wait_line("naive ingest: polling")
            procs, bases = [], []
            for _ in range(relays):
                port = free_port()
                relay = Proc([PYTHON, "-m", "bench.naive", "relay", *common, "--port", str(port)])
                started.append(relay)
                base = f"http://127.0.0.1:{port}"
                wait_for(lambda b=base: _health(b), timeout=20, what="naive relay")
                procs.append(relay)
                bases.append(base)
        sysm = System(kind, redis, events_file, prefix, ingest, procs, bases)
        setup_lines = setup.count(b"\n")
        wait_for(lambda: sysm.lines_ingested() >= setup_lines, timeout=30, what="setup lines ingested")
        yield sysm
    finally:
        for proc in reversed(started):
            try:
                proc.stop(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


class ViewerProcess:
    """python -m bench.viewers: N viewers reading every message, started and collected by the parent."""

    def __init__(self, urls: list[str], n: int, client: str = "websockets") -> None:
        config = {"urls": urls, "n": n, "client": client}
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "bench.viewers", json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"viewers process exited with {self.proc.wait()}")
        self.ready = int(json.loads(line)["ready"])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def finish(self, start_ns: int, end_ns: int) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"stop {start_ns} {end_ns}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return json.loads(line)  # type: ignore[no-any-return]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def measured_run(
    sysm: System,
    rate: float,
    viewers: int,
    duration: float,
    warmup: float = 1.0,
    client: str = "websockets",
    sample_rss: bool = False,
) -> dict[str, Any]:
    """One open-loop run: `rate` lines/s for `duration` s to `viewers` viewers; latency over [warmup, duration)."""
    vp = ViewerProcess(sysm.ws_urls, viewers, client)
    try:
        t0 = time.time_ns() + 300_000_000
        config = {"file": str(sysm.events_file), "rate": rate, "duration": duration, "t0_ns": t0}
        pids = sysm.pids() | {"viewers": vp.pid}
        rss_before = {name: rss_kib(pid) for name, pid in pids.items()}
        time.sleep(0.3)
        meter = CpuMeter(pids)
        appender = subprocess.run(
            [PYTHON, "-m", "bench.appender", json.dumps(config)], capture_output=True, text=True, cwd=ROOT
        )
        if appender.returncode != 0:
            raise RuntimeError(f"appender failed: {appender.stderr[-2000:]}")
        rss_during = {name: rss_kib(pid) for name, pid in pids.items()}
        cpu = meter.stop()
        written = json.loads(appender.stdout)
        time.sleep(min(2.0, 0.5 + duration * 0.05))  # the tail still in flight
        start_ns, end_ns = t0 + int(warmup * 1e9), t0 + int(duration * 1e9)
        result = vp.finish(start_ns, end_ns)
        used = meter.used()
    finally:
        vp.kill()
    relay_cpu = sum(v for k, v in used.items() if k.startswith("relay"))
    result["relay_cpu_us_per_message"] = round(relay_cpu / result["received"] * 1e6, 1) if result["received"] else None
    period = 1e9 / rate  # the appender's schedule: line j is due at t0 + int(j * period)
    in_window = sum(1 for j in range(written["lines"]) if start_ns <= t0 + int(j * period) < end_ns)
    expected = in_window * vp.ready
    result.update(
        rate=rate,
        viewers=viewers,
        connected=vp.ready,
        duration_s=duration,
        expected=expected,
        delivered_pct=round(100 * result["measured"] / expected, 2) if expected else 0.0,
        messages_per_s=round(rate * vp.ready),
        cpu_pct=cpu,
        appender=written,
    )
    if sample_rss:
        result["rss_kib_before"] = rss_before
        result["rss_kib_during"] = rss_during
    return result
