"""ingest as a real process on a real Redis: atomic commits, exactly-once across kill -9, bad lines, outages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from contract import Keys
from ingest.settings import Settings
from tests.stack import PYTHON, ROOT, RedisServer, play_fixture, start_ingest, wait_for

reliability = pytest.mark.reliability


def tool_line(i: int, session: str = "s-burst") -> bytes:
    payload = {
        "session_id": session,
        "hook_event_name": "PreToolUse",
        "tool_name": "Read",
        "tool_use_id": f"tu-{i}",
        "_received_at": int(time.time() * 1000),
    }
    return json.dumps(payload).encode() + b"\n"


def seq(server: RedisServer, prefix: str) -> int:
    return int(server.cli("HGET", Keys(prefix).meta, "seq").strip() or 0)


def stream_tool_ids(server: RedisServer, prefix: str) -> list[str]:
    out = subprocess.run(
        ["redis-cli", "-p", str(server.port), "--raw", "XRANGE", Keys(prefix).log, "-", "+"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ids = []
    for line in out.splitlines():
        if line.startswith("{"):
            data = json.loads(line)["data"]
            if data["type"] == "tool_use":
                ids.append(data["tool_use_id"])
    return ids


def test_fixture_through_the_hook_into_redis(redis_server: RedisServer, prefix: str, events_file: Path) -> None:
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
    try:
        play_fixture(events_file)
        # 40 events, plus 3 re-keys to real ids, 3 resolved models, a permission wait set and cleared.
        wait_for(lambda: seq(redis_server, prefix) == 48, what="48 events committed")
        keys = Keys(prefix)
        assert redis_server.cli("HLEN", keys.alive).strip() == "0"  # SessionEnd ended everyone
        stats = dict(zip(*[iter(redis_server.cli("HGETALL", keys.stats).split())] * 2, strict=True))
        assert stats["lines"] == "44" and stats["events"] == "48" and stats["rejected"] == "0"
        # The source is named by this host and the file, the same here as in the ingest it started.
        source = Settings(events_file=events_file).source_name
        ckpt = redis_server.cli("HGET", keys.checkpoint(source), "off").strip()
        assert int(ckpt) == events_file.stat().st_size
    finally:
        assert ingest.stop() == 0  # SIGTERM: finish the batch, exit 0
    assert "ingest stopped" in ingest.output


def test_kill_9_mid_stream_then_restart_publishes_every_line_once(
    redis_server: RedisServer, prefix: str, events_file: Path
) -> None:
    events_file.parent.mkdir(parents=True)
    total = 6000
    with open(events_file, "wb") as f:
        f.write(b"".join(tool_line(i) for i in range(total)))
    for _ in range(3):
        before = seq(redis_server, prefix)
        if before > total:
            break  # a fast run may finish the file before it is killed
        ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
        wait_for(lambda b=before: seq(redis_server, prefix) > b, what="some progress")  # type: ignore[misc]
        ingest.kill()
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
    try:
        wait_for(lambda: seq(redis_server, prefix) >= total + 1, timeout=30, what="every line committed")
    finally:
        ingest.stop()
    assert stream_tool_ids(redis_server, prefix) == [f"tu-{i}" for i in range(total)]


@reliability(
    "Faults",
    "two ingests on one file",
    injected="a second ingest process on the same file and prefix",
    checked="the checkpoint compare-and-set lets only one commit each range: every line once, in order",
)
def test_two_ingests_on_one_file_never_double_publish(
    redis_server: RedisServer, prefix: str, events_file: Path
) -> None:
    events_file.parent.mkdir(parents=True)
    events_file.write_bytes(b"")
    a = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
    b = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
    try:
        for chunk in range(10):
            with open(events_file, "ab") as f:
                f.write(b"".join(tool_line(chunk * 300 + i) for i in range(300)))
        wait_for(lambda: seq(redis_server, prefix) >= 3001, timeout=30, what="all lines")
    finally:
        a.stop()
        b.stop()
    assert stream_tool_ids(redis_server, prefix) == [f"tu-{i}" for i in range(3000)]


BAD_LINES = [
    b"not json",
    b"NaN",
    b"[1,2]",
    b'{"a":1}{"b":2}',
    b"",
    b'{"session_id":"s","hook_event_name":"Nope"}',
    b'{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Read","tool_use_id":"bad\xff"}',
    b'{"session_id":7,"hook_event_name":"Stop"}',
    b'"just a string"',
    b"\xef\xbb\xbf" + tool_line(1001).rstrip(b"\n"),  # a BOM: tolerated
    tool_line(1002).rstrip(b"\n") + b"\r",  # CRLF: tolerated
    b'{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Read","tool_use_id":"\\ud83d"}',  # lone surrogate
    b"x" * (2 << 20),  # over the 1 MiB line cap
]


@reliability(
    "Bad input",
    "the events file",
    injected="non-JSON, NaN, an array, two objects on one line, an empty line, CRLF, a BOM, invalid UTF-8, a lone surrogate, a 2 MiB line, a wrongly typed field, an unknown hook event, between good lines",
    checked="each counted by reason and logged with its byte offset; every neighbour published; ingest keeps following",
)
def test_bad_lines_are_counted_logged_and_skipped(redis_server: RedisServer, prefix: str, events_file: Path) -> None:
    events_file.parent.mkdir(parents=True)
    body = tool_line(0)
    for bad in BAD_LINES:
        body += bad + b"\n" + tool_line(len(body))
    events_file.write_bytes(body)
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start")
    try:
        wait_for(
            lambda: int(redis_server.cli("HGET", Keys(prefix).stats, "lines").strip() or 0) >= 27, what="all lines"
        )
        time.sleep(0)  # the counters above are committed with the events in one call: nothing more to wait for
    finally:
        ingest.stop()
    stats = dict(zip(*[iter(redis_server.cli("HGETALL", Keys(prefix).stats).split())] * 2, strict=True))
    assert int(stats["rejected"]) == 10
    for reason in (
        "not_json",
        "not_object",
        "empty",
        "unknown_hook_event",
        "invalid_utf8",
        "bad_session_id",
        "too_long",
    ):
        assert int(stats[f"rejected:{reason}"]) >= 1, reason
    ids = stream_tool_ids(redis_server, prefix)
    assert len(ids) == 14 + 3  # every good neighbour, the BOM and CRLF lines, and the lone surrogate
    assert "skipped line at byte" in ingest.output


@reliability(
    "Faults",
    "Redis down under ingest",
    injected="redis-server stopped while 199 lines arrive, then started",
    checked="ingest waits with backoff, the offset does not move; all lines published once after",
)
def test_redis_outage_waits_and_catches_up(tmp_path: Path, prefix: str, events_file: Path) -> None:
    server = RedisServer(extra=("--appendonly", "yes", "--appendfsync", "always"))
    server.start()
    try:
        events_file.parent.mkdir(parents=True)
        events_file.write_bytes(tool_line(0))
        ingest = start_ingest(server.url, events_file, prefix, "--from", "start")
        wait_for(lambda: seq(server, prefix) == 2, what="first line")
        server.stop()
        with open(events_file, "ab") as f:
            f.write(b"".join(tool_line(i) for i in range(1, 200)))
        ingest.wait_line("Redis unreachable", timeout=15)
        server.start()
        wait_for(lambda: seq(server, prefix) == 201, timeout=30, what="catch-up after the outage")
        assert ingest.stop() == 0
        assert stream_tool_ids(server, prefix) == [f"tu-{i}" for i in range(200)]
    finally:
        server.close()


@reliability(
    "Faults",
    "Redis flushed under ingest",
    injected="FLUSHALL between two lines",
    checked="a new epoch (never the old one); ingest rewrites its alive set",
)
def test_redis_restarted_empty_gets_a_new_epoch_and_the_alive_set_back(
    own_redis: RedisServer, prefix: str, events_file: Path
) -> None:
    events_file.parent.mkdir(parents=True)
    events_file.write_bytes(tool_line(0))
    ingest = start_ingest(own_redis.url, events_file, prefix, "--from", "start")
    try:
        wait_for(lambda: seq(own_redis, prefix) == 2, what="first line")
        epoch = own_redis.cli("HGET", Keys(prefix).meta, "epoch").strip()
        own_redis.cli("FLUSHALL")
        with open(events_file, "ab") as f:
            f.write(tool_line(1))
        wait_for(
            lambda: seq(own_redis, prefix) >= 1 and own_redis.cli("HLEN", Keys(prefix).alive).strip() == "1",
            what="rewritten state",
        )
        assert own_redis.cli("HGET", Keys(prefix).meta, "epoch").strip() not in ("", epoch)
    finally:
        ingest.stop()


@reliability(
    "Bad input",
    "configuration: bad flags",
    injected="a bad Redis URL, --from, --idle-timeout, --prefix, an unknown flag",
    checked="one line naming the flag and value, exit 2",
)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--redis-url", "http://x"], "--redis-url has value 'http://x': expected redis://"),
        (["--from", "middle"], "--from has value 'middle'"),
        (["--idle-timeout", "soon"], "--idle-timeout has value 'soon'"),
        (["--prefix", "a b"], "--prefix has value 'a b'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_flags_get_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = subprocess.run([PYTHON, "-m", "ingest", *args], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@reliability(
    "Bad input",
    "configuration: unreachable Redis",
    injected="a URL with a password pointing at a closed port",
    checked="one line saying what to do, exit 1, the password never printed",
)
def test_unreachable_redis_at_start_is_one_clear_line(tmp_path: Path) -> None:
    url = "redis://:s3cret@127.0.0.1:1/0"
    result = subprocess.run(
        [PYTHON, "-m", "ingest", "--redis-url", url, "--events-file", str(tmp_path / "e.jsonl")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "cannot reach Redis" in last and "s3cret" not in result.stderr


def test_sigint_exits_zero(redis_server: RedisServer, prefix: str, events_file: Path) -> None:
    ingest = start_ingest(redis_server.url, events_file, prefix)
    assert ingest.stop(signal.SIGINT) == 0
    assert os.path.exists(events_file.parent) or True  # ingest never creates the hook's folder itself
