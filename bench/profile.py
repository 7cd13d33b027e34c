"""Where the time goes: py-spy samples of a running relay or ingest, reduced to the functions on CPU.

`py-spy record --format raw` writes one line per distinct stack, "outer;...;leaf count"; idle samples (a thread
waiting in epoll) are left out, so a leaf's share of the samples is its share of the CPU the process used: its
self time. --nonblocking reads the process without pausing it, so the profiled load runs as it would.
py-spy needs ptrace rights on the process; where it has none, the report says why and the run goes on.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import PYTHON

PY_SPY = Path(PYTHON).parent / "py-spy"
RATE_HZ = 200
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


class Recording:
    """py-spy attached to `pid` for `seconds`, in the background; result() waits for it and reads its samples."""

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        self.out = out
        self.seconds = max(1, round(seconds))
        binary = PY_SPY if PY_SPY.exists() else shutil.which("py-spy")
        self.proc: subprocess.Popen[str] | None = None
        self.error = "" if binary else f"py-spy is not installed (looked for {PY_SPY} and on PATH)"
        if binary:
            args = [str(binary), "record", "--pid", str(pid), "--duration", str(self.seconds)]
            args += ["--rate", str(RATE_HZ), "--format", "raw", "--nonblocking", "--output", str(out)]
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self) -> None:
        """End the sampling now; py-spy writes what it has on SIGINT, as on Control-C."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def result(self) -> dict[str, Any]:
        if self.proc is None:
            return {"failed": self.error}
        try:
            _, stderr = self.proc.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            return {"failed": f"py-spy did not finish within {self.seconds + 30} s"}
        if self.proc.returncode != 0 or not self.out.exists():
            first = next((line for line in stderr.splitlines() if line.strip()), "no output")
            return {"failed": f"py-spy exited with {self.proc.returncode}: {first.strip()[:200]}"}
        return top(self.out.read_text())


def top(raw: str, n: int = 10) -> dict[str, Any]:
    """Self time of the `n` busiest leaf functions and files, in % of the samples, from py-spy's raw format."""
    functions: Counter[str] = Counter()
    files: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        function, file = leaf(stack)
        functions[f"{function} ({file})"] += int(count)
        files[file] += int(count)
        total += int(count)

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"name": name, "samples": samples, "self_pct": round(100 * samples / total, 1)}
            for name, samples in counter.most_common(n)
        ]

    return {"samples": total, "functions": share(functions), "files": share(files)}


def leaf(stack: str) -> tuple[str, str]:
    """The innermost frame of "outer (a.py:1);inner (pkg/b.py:9)": ("inner", "pkg/b.py"), line dropped and the
    file cut to its last two path parts (enough to tell relay/hub.py from uvicorn's or asyncio's)."""
    frame = stack.rsplit(";", 1)[-1].strip()
    found = FRAME.match(frame)
    if not found:
        return frame, "?"
    parts = Path(found["file"]).parts
    return found["function"], "/".join(parts[-2:])
