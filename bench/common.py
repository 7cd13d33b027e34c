"""Shared by every benchmark: the machine, percentiles, process CPU and RSS, the workload's payloads."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---- statistics


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile; nan for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def median(values: list[float]) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# ---- processes


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    """Resident set size from /proc/<pid>/statm, in KiB."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE // 1024


class CpuMeter:
    """CPU used by some processes over a wall-clock window: cpu_percent = 100 means one core busy."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start_wall = time.monotonic()
        self.start = {name: _cpu_or_nan(pid) for name, pid in pids.items()}

    def used(self) -> dict[str, float]:
        """CPU seconds used by each process since the meter started."""
        return {name: _cpu_or_nan(pid) - self.start[name] for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.start_wall
        return {
            name: round(100 * (_cpu_or_nan(pid) - self.start[name]) / wall, 1) if wall > 0 else math.nan
            for name, pid in self.pids.items()
        }


def _cpu_or_nan(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return math.nan


# ---- the machine and the versions


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    load = "unknown"
    with contextlib.suppress(OSError):
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "nproc": str(os.cpu_count()),
        "CPU": cpu,
        "RAM": ram,
        "kernel": platform.release(),
        "load average at start (1, 5, 15 min)": load,
    }


def versions() -> dict[str, str]:
    out = {"Python": platform.python_version()}
    redis_server = shutil.which("redis-server")
    if redis_server:
        text = subprocess.run([redis_server, "--version"], capture_output=True, text=True).stdout
        found = re.search(r"v=(\S+)", text)
        out["redis-server"] = found.group(1) if found else text.strip()
    for dist in ("redis", "hiredis", "uvicorn", "starlette", "wsproto", "websockets", "watchfiles", "playwright"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist if dist != "redis" else "redis-py"] = metadata.version(dist)
    chromium = shutil.which("chromium")
    if chromium:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out["Chromium"] = subprocess.run(
                [chromium, "--version"], capture_output=True, text=True, timeout=20
            ).stdout.strip()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "ingest", "relay", "contract", "hooks", "web"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if head.returncode == 0:
            changed = " + uncommitted changes in the product" if dirty.stdout.strip() else ""
            out["agentwatch (git)"] = head.stdout.strip() + changed
    sh = shutil.which("sh")
    if sh:
        out["sh"] = os.path.realpath(sh)
    jq = shutil.which("jq")
    if jq:
        out["jq"] = subprocess.run([jq, "--version"], capture_output=True, text=True).stdout.strip()
    return out


# ---- the workload: hook lines as the hook writes them


SESSIONS = (
    "3f1c9a2e-7b4d-4e8a-9c6f-1d2e3f4a5b6c",
    "8a7b6c5d-4e3f-4a1b-8c9d-0e1f2a3b4c5d",
    "c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f",
)
AGENTS = ("a3f9c1d27b84e065", "a71be0c94d2f5a38", "ac52d8e6f1097b4a")
TOOLS = (
    ("Read", {"file_path": "/home/dev/acme-shop/src/checkout/totals.ts"}),
    ("Grep", {"pattern": "calculateTotal", "path": "src"}),
    ("Bash", {"command": "npm test -- src/checkout", "description": "Run the tests"}),
    ("Edit", {"file_path": "src/checkout/cart.ts", "old_string": "a", "new_string": "b"}),
)


class Workload:
    """Hook payloads for a few sessions, each with its orchestrator and three sub-agents.

    setup() opens the sessions and makes every agent known (so measured lines give exactly one event each);
    pre()/post() are one tool call's PreToolUse and PostToolUse (~300 bytes each, like the real ones).
    """

    def __init__(self, sessions: int = 3, transcripts: str = "/home/dev/.claude/projects/acme") -> None:
        self.sessions = SESSIONS[:sessions]
        self.transcripts = transcripts  # the folder the payloads' transcript_path names
        self.callers = [(s, a) for s in self.sessions for a in (None, *AGENTS)]
        self.n = 0

    def _line(self, payload: dict[str, Any], received_ms: int) -> bytes:
        payload["_received_at"] = received_ms
        return json.dumps(payload, separators=(",", ":")).encode() + b"\n"

    def _base(self, session: str, hook: str, agent: str | None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "session_id": session,
            "transcript_path": f"{self.transcripts}/{session[:8]}.jsonl",
            "cwd": "/home/dev/acme-shop",
            "hook_event_name": hook,
        }
        if agent:
            payload["agent_id"] = agent
            payload["agent_type"] = "Explore"
        return payload

    def setup(self, received_ms: int) -> bytes:
        out = b""
        for session in self.sessions:
            start = self._base(session, "SessionStart", None) | {"source": "startup", "model": "claude-opus-4-5"}
            out += self._line(start, received_ms)
            for agent in AGENTS:
                out += self.pre(f"toolu_setup_{session[:8]}_{agent}", received_ms, caller=(session, agent))
        return out

    def next_caller(self) -> tuple[str, str | None]:
        caller = self.callers[self.n % len(self.callers)]
        self.n += 1
        return caller

    def pre(self, tool_use_id: str, received_ms: int, caller: tuple[str, str | None] | None = None) -> bytes:
        session, agent = caller or self.next_caller()
        tool, tool_input = TOOLS[self.n % len(TOOLS)]
        payload = self._base(session, "PreToolUse", agent) | {
            "tool_name": tool,
            "tool_input": tool_input,
            "tool_use_id": tool_use_id,
        }
        return self._line(payload, received_ms)

    def post(self, tool_use_id: str, received_ms: int, caller: tuple[str, str | None]) -> bytes:
        session, agent = caller
        tool, tool_input = TOOLS[self.n % len(TOOLS)]
        payload = self._base(session, "PostToolUse", agent) | {
            "tool_name": tool,
            "tool_use_id": tool_use_id,
            "tool_response": {"success": True},
            "duration_ms": 42,
        }
        return self._line(payload, received_ms)


# ---- small things


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    """with timer() as t: ...; t[0] is the elapsed seconds afterwards."""
    out: list[float] = []
    start = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - start)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
