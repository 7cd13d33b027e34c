"""The previous ingest and relay, run beside the new ones in the same run: a ratio is only read off one run.

The baseline is a git revision's tree, written out with `git archive REV | tar -x` (no worktree, no network)
and run with the same venv's python, its working directory and PYTHONPATH at that tree, so `-m ingest` and
`-m relay` import the tree's packages, not the checkout's. Where git or the revision is missing the run goes on
without it and the report says why.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.common import PYTHON, ROOT
from tests.stack import Proc, free_port, relay_ready, wait_for

BASELINE_REV = "001493a"  # the last commit before the performance work of issue 13


@dataclass(frozen=True)
class Baseline:
    rev: str  # as asked, e.g. "001493a"; "none" when turned off
    tree: Path | None  # None: no baseline in this run, `note` says why
    note: str

    @property
    def label(self) -> str:
        return f"{self.rev} (baseline)"


def materialize(rev: str, work: Path) -> Baseline:
    """The tree of `rev` under work/baseline, or a Baseline without a tree saying why there is none."""
    if rev.lower() == "none":
        return Baseline("none", None, "turned off (--baseline none)")
    git = shutil.which("git")
    if git is None:
        return Baseline(rev, None, "git is not installed, so no baseline could be written out")
    found = subprocess.run(
        [git, "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        return Baseline(rev, None, f"revision {rev!r} is not in this checkout ({ROOT}; a shallow or foreign clone)")
    tree = work / "baseline"
    tree.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen([git, "-C", str(ROOT), "archive", found.stdout.strip()], stdout=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, capture_output=True)
    assert archive.stdout is not None
    archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        return Baseline(rev, None, f"git archive {rev} | tar -x failed: {untar.stderr.decode(errors='replace')[:200]}")
    missing = [name for name in ("ingest", "relay", "contract") if not (tree / name / "__init__.py").exists()]
    if missing:
        return Baseline(rev, None, f"the tree of {rev} has no {', '.join(missing)} package")
    # The page's d3 is installed by npm, never committed: the baseline relay serves the checkout's copy.
    node_modules = ROOT / "web" / "node_modules"
    if node_modules.is_dir() and (tree / "web").is_dir() and not (tree / "web" / "node_modules").exists():
        (tree / "web" / "node_modules").symlink_to(node_modules)
    return Baseline(rev, tree, f"`git archive {rev}` run from {tree.name}/ with this venv's python")


def _in_tree(tree: Path, module: str, args: list[str]) -> Proc:
    # tests.stack.Proc starts in the checkout; sh moves to the tree and execs python (same pid, so the bench
    # measures python's CPU and stops it by pid), and python -m puts the tree first on sys.path.
    argv = ["sh", "-c", 'cd "$0" && exec "$@"', str(tree), PYTHON, "-m", module, *args]
    return Proc(argv, env={"PYTHONPATH": str(tree)})


def start_ingest(tree: Path, redis_url: str, events_file: Path, prefix: str, *extra: str) -> Proc:
    """tests.stack.start_ingest, for the tree's ingest."""
    args = ["--redis-url", redis_url, "--events-file", str(events_file), "--prefix", prefix, *extra]
    proc = _in_tree(tree, "ingest", args)
    try:
        proc.wait_line("ingest: reading", timeout=20)
    except BaseException:
        proc.kill()
        raise
    return proc


def start_relay(tree: Path, redis_url: str, prefix: str) -> tuple[Proc, str]:
    """tests.stack.start_relay, for the tree's relay."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _in_tree(tree, "relay", ["--redis-url", redis_url, "--prefix", prefix, "--bind", f"127.0.0.1:{port}"])
    try:
        wait_for(
            lambda: relay_ready(base) or proc.proc.poll() is not None, timeout=20, what=f"baseline relay on {base}"
        )
    except BaseException:
        proc.kill()
        raise
    if proc.proc.poll() is not None:
        raise RuntimeError(f"the baseline relay exited at start-up:\n{proc.output[-2000:]}")
    return proc, base
