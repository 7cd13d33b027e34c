"""Running the system under test: agentwatch's real ingest and relay processes, the baseline's (bench/baseline.py)
or the naive model, on a private redis-server; and one measured run of the appender against viewers in their
own process.

A cell past the system's capacity is a figure, not a failure: when the viewers cannot all connect, the relay
does not answer /stats, or its backlog does not drain, the cell is recorded as saturated with what was seen
(run_cell) and the section goes on.
"""

from __future__ import annotations

import contextlib
import json
import math
import select
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import baseline, redis_ops
from bench.cluster import ClusterTarget
from bench.common import PYTHON, ROOT, CpuMeter, log, rss_kib
from bench.probe import Probe
from contract import Keys
from tests.stack import Proc, RedisServer, free_port, start_ingest, start_relay, wait_for

STATS_TIMEOUT_S = 2.0  # a relay that takes longer to answer /stats is past its capacity
STATS_TRIES = 3
DRAIN_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 30.0  # for every viewer of a cell to be connected with its snapshot
REPORT_TIMEOUT_S = 60.0  # for the viewers' process to report once asked


class Saturated(Exception):
    """A cell past the system's capacity; the message says what was seen."""


@dataclass
class System:
    """ingest + one or more relays (agentwatch or naive) on one Redis (or Cluster), reading one events file."""

    kind: str  # "agentwatch", "baseline" (the baseline's tree) or "naive"
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
        """/stats of relay i; Saturated when it does not answer within STATS_TIMEOUT_S, STATS_TRIES times."""
        error: Exception | None = None
        for _ in range(STATS_TRIES):
            try:
                with urllib.request.urlopen(self.bases[i] + "/stats", timeout=STATS_TIMEOUT_S) as r:
                    return json.load(r)  # type: ignore[no-any-return]
            except (OSError, ValueError) as exc:
                error = exc
        raise Saturated(
            f"relay {i + 1} did not answer /stats within {STATS_TIMEOUT_S:.0f} s, {STATS_TRIES} times "
            f"({type(error).__name__}: {error})"
        )

    def lines_ingested(self) -> int:
        return int(self.redis.cli("HGET", Keys.for_url(self.prefix, self.redis.url).stats, "lines").strip() or 0)

    def relay_rss_kib(self, i: int = 0) -> int:
        return rss_kib(self.relays[i].proc.pid)

    def drain(self, timeout: float = DRAIN_TIMEOUT_S) -> float:
        """Wait until ingest has committed every line of the file and no relay holds a queued event.

        Run between cells, so that a saturated cell's backlog never lands on the next one. Returns the seconds
        waited (the backlog the last cell left behind); Saturated when it is still there after `timeout`.
        """
        start = time.monotonic()
        total = self.events_file.read_bytes().count(b"\n")
        deadline = start + timeout
        while True:
            queued = sum(self.relay_stats(i)["queued"] for i in range(len(self.relays)))
            ingested = self.lines_ingested()
            if ingested >= total and queued == 0:
                return round(time.monotonic() - start, 1)
            if time.monotonic() > deadline:
                raise Saturated(
                    f"the backlog did not drain in {timeout:.0f} s: {ingested:,} of {total:,} lines ingested, "
                    f"{queued:,} events queued in the relays"
                )
            time.sleep(0.1)


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
    tree: Path | None = None,
) -> Iterator[System]:
    """Start ingest and relays of `kind` on a fresh prefix; `setup` lines are ingested first.

    The events file is a new one holding `setup`, or `events_file` as it is (two systems can read one file).
    kind "baseline" runs the processes of `tree` (bench/baseline.py).
    """
    if kind == "baseline" and tree is None:
        raise ValueError("system('baseline') needs the baseline's tree: expected a Path, got None")
    prefix = "b" + uuid.uuid4().hex[:10]
    if events_file is None:
        events_file = work / f"{prefix}.jsonl"
        events_file.write_bytes(setup)
    else:
        setup = events_file.read_bytes()
    started: list[Proc] = []
    try:
        procs: list[Proc] = []
        bases: list[str] = []
        if kind == "naive":
            common = ["--redis-url", redis.url, "--prefix", prefix]
            ingest = Proc([PYTHON, "-m", "bench.naive", "ingest", *common, "--events-file", str(events_file)])
            started.append(ingest)
            ingest.wait_line("naive ingest: polling")
            for _ in range(relays):
                port = free_port()
                relay = Proc([PYTHON, "-m", "bench.naive", "relay", *common, "--port", str(port)])
                started.append(relay)
                base = f"http://127.0.0.1:{port}"
                wait_for(lambda b=base: _health(b), timeout=20, what="naive relay")
                procs.append(relay)
                bases.append(base)
        else:
            if kind == "baseline":
                assert tree is not None
                ingest = baseline.start_ingest(tree, redis.url, events_file, prefix, "--from", "start")
            elif watch_step_ms is not None:
                args = ["--redis-url", redis.url, "--events-file", str(events_file), "--prefix", prefix]
                args += ["--from", "start"]
                ingest = Proc([PYTHON, "-m", "bench.ingest_variant", "--watch-step-ms", str(watch_step_ms), *args])
                started.append(ingest)
                ingest.wait_line("ingest: reading")
            else:
                ingest = start_ingest(redis.url, events_file, prefix, "--from", "start")
            if ingest not in started:
                started.append(ingest)
            for _ in range(relays):
                if kind == "baseline":
                    assert tree is not None
                    relay, base = baseline.start_relay(tree, redis.url, prefix)
                else:
                    relay, base = start_relay(redis.url, prefix)
                started.append(relay)
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
    """python -m bench.viewers: N viewers reading every message, started and collected by the parent.

    `ready` viewers have their snapshot; `pending` were still connecting after CONNECT_TIMEOUT_S and `failed`
    were refused (a relay past its capacity): measured_run records those as a saturated cell.
    """

    def __init__(self, urls: list[str], n: int, client: str = "websockets") -> None:
        config = {"urls": urls, "n": n, "client": client, "connect_s": CONNECT_TIMEOUT_S}
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "bench.viewers", json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        line = self._line(CONNECT_TIMEOUT_S + 30)
        if not line:
            self.kill()
            raise Saturated(f"the viewers' process ended before its {n} viewers connected (exit {self.proc.poll()})")
        answer = json.loads(line)
        self.ready = int(answer["ready"])
        self.failed = int(answer.get("failed", 0))
        self.pending = int(answer.get("pending", 0))

    def _line(self, timeout: float) -> str:
        """The process's next line, or "" when it gives none within `timeout` (it is then killed)."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.kill()
            return ""
        return self.proc.stdout.readline()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def finish(self, start_ns: int, end_ns: int) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(f"stop {start_ns} {end_ns}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it ended already: _line says so
        line = self._line(REPORT_TIMEOUT_S)
        if not line:
            self.kill()
            raise Saturated(f"the viewers' process gave no summary within {REPORT_TIMEOUT_S:.0f} s")
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
        return json.loads(line)  # type: ignore[no-any-return]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def saturated_cell(rate: float, viewers: int, duration: float, seen: str) -> dict[str, Any]:
    """A cell that gave no latency figures: what was seen instead, in the shape the report reads."""
    nan = math.nan
    return {
        "rate": rate,
        "viewers": viewers,
        "connected": 0,
        "duration_s": duration,
        "received": 0,
        "frames": 0,
        "bytes": 0,
        "measured": 0,
        "expected": 0,
        "p50_ms": nan,
        "p99_ms": nan,
        "p999_ms": nan,
        "max_ms": nan,
        "delivered_pct": 0.0,
        "messages_per_s": round(rate * viewers),
        "closed": {},
        "cpu_pct": {},
        "appender": {"late_ms_p99": None},
        "relay_cpu_us_per_message": None,
        "saturated": seen,
    }


def measured_run(
    sysm: System,
    rate: float,
    viewers: int,
    duration: float,
    warmup: float = 1.0,
    client: str = "websockets",
    sample_rss: bool = False,
    probe: bool = True,
    on_load: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """One open-loop run: `rate` lines/s for `duration` s to `viewers` viewers; latency over [warmup, duration).

    Raises Saturated when the viewers' process could not connect or report at all. With `probe`, the first
    relay's /health, /ready and /stats are timed throughout (bench/probe.py). `on_load` is called once the
    viewers are connected, just before the load starts (a profiler attaches then).
    """
    vp = ViewerProcess(sysm.ws_urls, viewers, client)
    try:
        t0 = time.time_ns() + 300_000_000
        config = {"file": str(sysm.events_file), "rate": rate, "duration": duration, "t0_ns": t0}
        pids = sysm.pids() | {"viewers": vp.pid}
        rss_before = {name: _rss_or_zero(pid) for name, pid in pids.items()}
        ops_before = redis_ops.read(sysm.redis)
        with contextlib.ExitStack() as stack:
            prober = stack.enter_context(Probe(sysm.bases[0])) if probe else None
            if on_load is not None:
                on_load()
            time.sleep(0.3)
            meter = CpuMeter(pids)
            appender = subprocess.run(
                [PYTHON, "-m", "bench.appender", json.dumps(config)], capture_output=True, text=True, cwd=ROOT
            )
            if appender.returncode != 0:
                raise RuntimeError(f"appender failed: {appender.stderr[-2000:]}")
            rss_during = {name: _rss_or_zero(pid) for name, pid in pids.items()}
            cpu = meter.stop()
            written = json.loads(appender.stdout)
            time.sleep(min(2.0, 0.5 + duration * 0.05))  # the tail still in flight
        ops_after = redis_ops.read(sysm.redis)
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
    if prober is not None:
        result["probe"] = prober.result()
    if ops_before is not None and ops_after is not None:
        result["redis_ops"] = redis_ops.per_event(redis_ops.delta(ops_before, ops_after), written["lines"])
    if vp.ready < viewers:
        result["saturated"] = (
            f"{vp.ready} of {viewers} viewers connected within {CONNECT_TIMEOUT_S:.0f} s "
            f"({vp.failed} refused, {vp.pending} still connecting)"
        )
    if sample_rss:
        result["rss_kib_before"] = rss_before
        result["rss_kib_during"] = rss_during
    return result


def run_cell(
    sysm: System,
    rate: float,
    viewers: int,
    duration: float,
    warmup: float = 1.0,
    client: str = "websockets",
    label: str = "",
    on_load: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """measured_run, then drain the backlog it left; a cell past the system's capacity is recorded as saturated
    with what was seen (never raised), so the section goes on to its next cell."""
    try:
        cell = measured_run(sysm, rate, viewers, duration, warmup=warmup, client=client, on_load=on_load)
    except Saturated as seen:
        cell = saturated_cell(rate, viewers, duration, str(seen))
    try:
        cell["drain_s"] = sysm.drain()
    except Saturated as seen:
        cell["drain_s"] = None
        cell["saturated"] = "; ".join(filter(None, [cell.get("saturated"), str(seen)]))
    if "saturated" in cell:
        log(f"{label or sysm.kind}: {rate:g} events/s to {viewers} viewers saturated: {cell['saturated']}")
    return cell


def _rss_or_zero(pid: int) -> int:
    try:
        return rss_kib(pid)
    except OSError:
        return 0  # the process ended (a relay that crashed under load): the cell says so elsewhere
