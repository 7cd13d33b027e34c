"""Memory: RSS per idle viewer, relay and ingest RSS at rest and under load, and a stalled viewer.

RSS is read from /proc/<pid>/statm. The stalled viewer is a raw socket that completes the WebSocket handshake
and never reads again; agentwatch and the naive model run side by side on the same Redis, tailing the same
events file fed by one appender, each relay with one stalled and one healthy viewer.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.baseline import Baseline
from bench.common import PYTHON, ROOT, Workload, log, rss_kib
from bench.harness import Saturated, ViewerProcess, measured_run, system
from tests.stack import RedisServer

FULL: dict[str, Any] = {
    "settle": 1.5,
    "idle_viewers": 500,
    "load_rate": 1000,
    "load_viewers": 100,
    "stall_rate": 2000,
    "stall_seconds": 20,
}
SMOKE: dict[str, Any] = {
    "settle": 0.5,
    "idle_viewers": 20,
    "load_rate": 100,
    "load_viewers": 3,
    "stall_rate": 200,
    "stall_seconds": 2,
}


SETTLE_S = [1.5]  # how long RSS is left to settle before it is read; shorter in smoke mode


def _settle() -> None:
    time.sleep(SETTLE_S[0])


def idle_viewers(server: RedisServer, work: Path, n: int, base: Baseline) -> dict[str, Any]:
    """Relay RSS with 0 and with n connected idle viewers (no traffic): agentwatch, the baseline and naive."""
    out: dict[str, Any] = {"viewers": n}
    setup = Workload().setup(int(time.time() * 1000))
    kinds = ["agentwatch", "baseline", "naive"] if base.tree is not None else ["agentwatch", "naive"]
    for kind in kinds:
        with system(kind, server, work, setup=setup, tree=base.tree) as sysm:
            warm = ViewerProcess(sysm.ws_urls, 1)  # the first viewer imports and allocates once per process
            warm.finish(0, 1)
            _settle()
            before = sysm.relay_rss_kib()
            vp = ViewerProcess(sysm.ws_urls, n)
            try:
                _settle()
                after = sysm.relay_rss_kib()
                connected = vp.ready
            finally:
                vp.finish(0, 1)
        out[kind] = {
            "rss_kib_0": before,
            "rss_kib_n": after,
            "connected": connected,
            "kib_per_viewer": round((after - before) / connected, 1) if connected else None,
        }
    return out


def at_rest_and_under_load(server: RedisServer, work: Path, rate: int, viewers: int) -> dict[str, Any]:
    setup = Workload().setup(int(time.time() * 1000))
    out: dict[str, Any] = {"rate": rate, "viewers": viewers}
    for kind in ("agentwatch", "naive"):
        with system(kind, server, work, setup=setup) as sysm:
            _settle()
            rest = {"ingest": rss_kib(sysm.ingest.proc.pid), "relay": sysm.relay_rss_kib()}
            try:
                cell = measured_run(sysm, rate, viewers, 5.0 if rate >= 1000 else 2.0, sample_rss=True)
            except Saturated as seen:  # a figure too: the RSS under load is then unknown
                out[kind] = {"rest_kib": rest, "load_kib": {"ingest": None, "relay": None}, "saturated": str(seen)}
                out[kind] |= {"p50_ms": math.nan, "p99_ms": math.nan}
                continue
            during = cell["rss_kib_during"]
            out[kind] = {
                "rest_kib": rest,
                "load_kib": {"ingest": during["ingest"], "relay": during["relay"]},
                "p50_ms": cell["p50_ms"],
                "p99_ms": cell["p99_ms"],
            }
    return out


def stalled_socket(ws_url: str) -> socket.socket:
    """Complete the handshake, then never read again."""
    parts = urlsplit(ws_url)
    sock = socket.create_connection((parts.hostname, parts.port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: read nothing past the handshake
        if not chunk:
            raise RuntimeError("the relay closed the stalled viewer during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {head[:60]!r}")
    return sock


def stalled_viewer(server: RedisServer, work: Path, rate: int, seconds: int) -> dict[str, Any]:
    events_file = work / "stall.jsonl"
    events_file.write_bytes(Workload().setup(int(time.time() * 1000)))
    with contextlib.ExitStack() as stack:
        aw = stack.enter_context(system("agentwatch", server, work, events_file=events_file))
        nv = stack.enter_context(system("naive", server, work, events_file=events_file))
        healthy = {name: ViewerProcess(s.ws_urls, 1) for name, s in (("agentwatch", aw), ("naive", nv))}
        for vp in healthy.values():
            stack.callback(vp.kill)
        stalled = {"agentwatch": stalled_socket(aw.ws_urls[0]), "naive": stalled_socket(nv.ws_urls[0])}
        for sock in stalled.values():
            stack.callback(sock.close)
        _settle()
        t0 = time.time_ns() + 200_000_000
        config = {"file": str(events_file), "rate": rate, "duration": seconds, "t0_ns": t0}
        appender = subprocess.Popen(
            [PYTHON, "-m", "bench.appender", json.dumps(config)], stdout=subprocess.PIPE, cwd=ROOT
        )
        stack.callback(appender.kill)
        timeline: list[dict[str, Any]] = []
        closed_after: float | None = None
        start = time.monotonic()
        while appender.poll() is None or time.monotonic() - start < seconds:
            aw_stats, nv_stats = aw.relay_stats(), nv.relay_stats()
            t = round(time.monotonic() - start, 1)
            timeline.append(
                {
                    "t": t,
                    "agentwatch_rss_kib": aw.relay_rss_kib(),
                    "naive_rss_kib": nv.relay_rss_kib(),
                    "agentwatch_viewers": aw_stats["viewers"],
                    "naive_viewers": nv_stats["viewers"],
                    "naive_queued": nv_stats["queued"],
                }
            )
            if closed_after is None and aw_stats["viewers"] < 2:
                closed_after = t
            time.sleep(1.0)
        appender.wait()
        time.sleep(1.0)
        end_ns = t0 + seconds * 1_000_000_000
        results = {name: vp.finish(t0 + 1_000_000_000, end_ns) for name, vp in healthy.items()}
        closes = {}
        for name, sock in stalled.items():
            closes[name] = _stalled_fate(sock)
    first, last = timeline[0], timeline[-1]
    return {
        "rate": rate,
        "seconds": seconds,
        "timeline": timeline,
        "agentwatch": {
            "rss_growth_kib": last["agentwatch_rss_kib"] - first["agentwatch_rss_kib"],
            "stalled_closed_after_s": closed_after,
            "stalled_socket": closes["agentwatch"],
            "healthy_p50_ms": results["agentwatch"]["p50_ms"],
            "healthy_p99_ms": results["agentwatch"]["p99_ms"],
            "viewers_at_end": last["agentwatch_viewers"],
        },
        "naive": {
            "rss_growth_kib": last["naive_rss_kib"] - first["naive_rss_kib"],
            "stalled_closed_after_s": None if last["naive_viewers"] >= 2 else "closed",
            "stalled_socket": closes["naive"],
            "queued_at_end": last["naive_queued"],
            "healthy_p50_ms": results["naive"]["p50_ms"],
            "healthy_p99_ms": results["naive"]["p99_ms"],
            "viewers_at_end": last["naive_viewers"],
        },
    }


def _stalled_fate(sock: socket.socket) -> str:
    """Read what the relay left for the stalled viewer: the stream then a close frame / EOF, or still open."""
    sock.settimeout(0.5)
    received = 0
    tail = b""
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return f"closed by the relay after {received // 1024} KiB"
            received += len(chunk)
            tail = (tail + chunk)[-64:]
    except TimeoutError:
        return f"still open ({received // 1024} KiB buffered for it)"
    except OSError as exc:
        return f"reset by the relay ({exc.__class__.__name__}) after {received // 1024} KiB"


def run(server: RedisServer, work: Path, smoke: bool, base: Baseline) -> dict[str, Any]:
    plan = SMOKE if smoke else FULL
    SETTLE_S[0] = plan["settle"]
    log("memory: idle viewers")
    idle = idle_viewers(server, work, plan["idle_viewers"], base)
    idle["baseline_rev"] = base.rev if base.tree is not None else None
    log("memory: at rest and under load")
    load = at_rest_and_under_load(server, work, plan["load_rate"], plan["load_viewers"])
    log("memory: a stalled viewer, agentwatch and naive side by side")
    stall = stalled_viewer(server, work, plan["stall_rate"], plan["stall_seconds"])
    return {"plan": plan, "idle": idle, "load": load, "stall": stall}
