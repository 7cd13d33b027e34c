"""The page's pure logic (web/model.js) is tested with Node's own runner; this makes it part of pytest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_web_model_node_tests_pass() -> None:
    """`node --test web/test/` passes; a missing node is a failure, not a skip."""
    node = shutil.which("node")
    assert node, "node is not on PATH: install Node.js 20+ to test web/model.js"
    command = [node, "--test", "web/test/"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
