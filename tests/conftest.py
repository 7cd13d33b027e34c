"""Shared fixtures: a real redis-server for the session, a fresh prefix and events file per test, a stack of
ingest and relay on them, and the system Chromium for the browser tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from redis.asyncio import Redis

if TYPE_CHECKING:
    from playwright.sync_api import Browser

from tests import stack as processes
from tests.stack import CHROMIUM, CHROMIUM_ARGS, RedisServer, Stack, running_stack


@pytest.fixture(autouse=True)
def reap() -> Iterator[None]:
    """Whatever a test started and left running (it failed half-way, say) is stopped by pid after it."""
    since = len(processes.STARTED)
    yield
    processes.reap(since)


def _running_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server on a free port for the whole run; tests keep apart by prefix."""
    yield from _running_server()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A private redis-server for a test that stops, restarts or flushes it."""
    yield from _running_server()


@pytest.fixture
def prefix() -> str:
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    return tmp_path / "claude" / "events.jsonl"


@pytest.fixture
def stack(redis_server: RedisServer, events_file: Path) -> Iterator[Stack]:
    """ingest and relay on the shared redis-server, reading a new, empty events file from its start."""
    events_file.parent.mkdir(parents=True, exist_ok=True)
    events_file.touch()
    with running_stack(redis_server.url, events_file) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """The system Chromium, driven by Playwright; one per test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


# ---- docs/reliability.md: generated from the run of every test marked `reliability`
RELIABILITY_DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
_results: dict[str, tuple[pytest.Mark, str, float]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    item_mark = _marks.get(report.nodeid)
    if item_mark is None:
        return
    if report.when == "call" or report.outcome != "passed":
        previous = _results.get(report.nodeid)
        if previous is None or previous[1] == "passed":
            _results[report.nodeid] = (item_mark, report.outcome, report.duration)


_marks: dict[str, pytest.Mark] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        mark = item.get_closest_marker("reliability")
        if mark is not None:
            _marks[item.nodeid] = mark


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Rewrite the report only after a full run (plain `pytest`, as `make test` does), never a partial one."""
    config = session.config
    selected = not config.option.keyword and config.option.markexpr in ("", "not soak")
    full_run = selected and config.args == config.getini("testpaths")
    if not full_run or not _results or len(_results) < len(_marks):
        return
    # One row per case: parametrized variants are counted together.
    cases: dict[tuple[str, str], dict[str, Any]] = {}
    for nodeid, (mark, outcome, duration) in sorted(_results.items(), key=lambda kv: kv[1][0].args):
        row = cases.setdefault(mark.args, {"mark": mark, "passed": 0, "runs": 0, "seconds": 0.0, "tests": []})
        row["runs"] += 1
        row["passed"] += outcome == "passed"
        row["seconds"] += duration
        name = nodeid.split("::")[-1].split("[")[0]
        if name not in row["tests"]:
            row["tests"].append(name)
    rows: dict[str, list[str]] = {}
    for (area, case), row in cases.items():
        mark = row["mark"]
        ok = row["passed"] == row["runs"]
        result = ("pass" if ok else "**FAIL**") + (f" {row['passed']}/{row['runs']}" if row["runs"] > 1 else "")
        tests = ", ".join(f"`{t}`" for t in row["tests"])
        rows.setdefault(area, []).append(
            f"| {case} | {mark.kwargs['injected']} | {mark.kwargs['checked']} | {result} ({row['seconds']:.1f} s) | {tests} |"
        )
    lines = [
        "# Reliability and security report",
        "",
        "Generated by the test run (`make test`) from the tests marked `reliability`: every row is a test that",
        "starts real processes (redis-server, ingest, relay, WebSocket clients, Chromium) and would fail without",
        "the behaviour it checks. Do not edit by hand.",
        "",
    ]
    for area, area_rows in rows.items():
        lines += [f"## {area}", "", "| case | injected | checked | result | test |", "|---|---|---|---|---|"]
        lines += area_rows + [""]
    RELIABILITY_DOC.parent.mkdir(exist_ok=True)
    RELIABILITY_DOC.write_text("\n".join(lines))
