"""`python -m bench --smoke` runs every benchmark on tiny sizes and writes a report with every section's table.

The figures are not judged (benchmarks never fail on timing); this keeps the benchmarks working.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import SECTIONS

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(240)


def test_bench_smoke_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = out.read_text()
    assert "smoke mode" in report
    for title in ("Machine and versions", *SECTIONS.values()):
        heading = f"## {title}\n"
        assert heading in report, f"no section {title!r}"
        body = report.split(heading, 1)[1].split("\n## ", 1)[0]
        assert re.search(r"^\|.*\|\n\|\s*:?-+:?\s*\|", body, re.M), f"section {title!r} has no table:\n{body[:500]}"
        assert "(could not render" not in body and "(failed" not in body and "(not run)" not in body, body[:500]
    for figure in ("nproc", "CPU", "RAM", "Python", "redis-server", "redis-py", "uvicorn", "starlette", "websockets"):
        assert f"| {figure} |" in report, figure
