"""The events file is private and bounded: modes on creation, rotation by rename, ingest's start-up warning.

The hook runs for real under dash, bash, bash --posix and busybox sh; ingest and redis-server are real processes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from contract import Keys
from ingest.permissions import warn_readable
from tests.stack import RedisServer, start_ingest, wait_for
from tests.test_hook_script import HOOK, SHELL_IDS, assert_quiet, base_env, compact, lines_of, run_hook, shell_argv
from tests.test_ingest import stream_tool_ids

reliability = pytest.mark.reliability

# Runs the hook under a permissive umask, as a user's login shell may have it.
UMASK_022 = ["sh", "-c", 'umask 022 && exec "$@"', "umask-022"]
LOCK = ".events.jsonl.rotating"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def tool_payload(tool_use_id: str, pad: int = 150) -> bytes:
    return compact(
        {
            "session_id": "s-rot",
            "hook_event_name": "PreToolUse",
            "tool_name": "Read",
            "tool_use_id": tool_use_id,
            "tool_input": {"file_path": "/p/" + "x" * pad},
        }
    )


def ids_in(path: Path) -> list[str]:
    return [json.loads(line)["tool_use_id"] for line in lines_of(path)] if path.exists() else []


# ---- modes


@reliability(
    "Security",
    "events file private on creation",
    injected="hook run under umask 022; events directory (two levels) and file absent",
    checked="directories 0700, file 0600",
)
@pytest.mark.parametrize("shell", SHELL_IDS)
def test_hook_creates_private_directory_and_file(shell: str, tmp_path: Path) -> None:
    events = tmp_path / "home" / "agentwatch" / "events.jsonl"
    assert_quiet(run_hook(shell, tool_payload("t1"), base_env(events, tmp_path), wrapper=UMASK_022))
    assert ids_in(events) == ["t1"]
    assert (mode(tmp_path / "home"), mode(events.parent), mode(events)) == (0o700, 0o700, 0o600)
    # The wrapper's umask really is permissive: without the hook's own umask the file would be 0644.
    control = tmp_path / "control"
    subprocess.run([*UMASK_022, "sh", "-c", ': > "$1"', "sh", str(control)], check=True, timeout=10)
    assert mode(control) == 0o644


@reliability(
    "Security",
    "existing modes left alone",
    injected="events file 0644 in a 0755 directory, made before the hook runs",
    checked="the hook appends and changes neither mode (ingest reports them)",
)
@pytest.mark.parametrize("shell", SHELL_IDS)
def test_hook_never_changes_an_existing_mode(shell: str, tmp_path: Path) -> None:
    events = tmp_path / "shared" / "events.jsonl"
    events.parent.mkdir()
    events.parent.chmod(0o755)
    events.write_bytes(tool_payload("t0") + b"\n")
    events.chmod(0o644)
    assert_quiet(run_hook(shell, tool_payload("t1"), base_env(events, tmp_path), wrapper=UMASK_022))
    assert ids_in(events) == ["t0", "t1"]
    assert (mode(events.parent), mode(events)) == (0o755, 0o644)


# ---- rotation


@reliability(
    "Security",
    "bounded events file",
    injected="AGENTWATCH_MAX_FILE_BYTES=20000, 300 events of ~250 bytes, one after another",
    checked="renamed to .1 past the limit; exactly one old file, past the limit; the kept lines are the last written, in order, once; new file 0600",
)
@pytest.mark.parametrize("shell", SHELL_IDS)
def test_rotation_keeps_one_old_file(shell: str, tmp_path: Path) -> None:
    limit = 20_000
    events = tmp_path / "state" / "events.jsonl"
    env = base_env(events, tmp_path, AGENTWATCH_MAX_FILE_BYTES=str(limit))
    written = [f"t{i}" for i in range(300)]
    for tool_use_id in written:
        assert_quiet(run_hook(shell, tool_payload(tool_use_id), env, wrapper=UMASK_022))
    rotated = events.with_name("events.jsonl.1")
    assert sorted(p.name for p in events.parent.iterdir()) == ["events.jsonl", "events.jsonl.1"]  # no lock left
    # A file is renamed once it is past the limit: the size check runs about once per limit/16 bytes appended.
    assert limit < rotated.stat().st_size < 2 * limit
    assert events.stat().st_size < 2 * limit
    kept = ids_in(rotated) + ids_in(events)
    assert kept == written[-len(kept) :]
    assert (mode(rotated), mode(events)) == (0o600, 0o600)


@reliability(
    "Security",
    "rotation of an old readable file",
    injected="a 0644 events file already past the limit",
    checked="rotated to .1 unchanged (0644); the next append creates a new file 0600",
)
@pytest.mark.parametrize("shell", SHELL_IDS)
def test_rotation_starts_a_private_file(shell: str, tmp_path: Path) -> None:
    limit = 20_000
    events = tmp_path / "events.jsonl"
    old = b"".join(tool_payload(f"old{i}") + b"\n" for i in range(120))
    assert len(old) > limit
    events.write_bytes(old)
    events.chmod(0o644)
    rotated = events.with_name("events.jsonl.1")
    env = base_env(events, tmp_path, AGENTWATCH_MAX_FILE_BYTES=str(limit))
    i = 0
    while not rotated.exists():  # the size is checked on about one call in five here
        assert i < 200, "never rotated"
        assert_quiet(run_hook(shell, tool_payload(f"t{i}"), env, wrapper=UMASK_022))
        i += 1
    assert rotated.read_bytes().startswith(old)
    assert mode(rotated) == 0o644
    assert not events.exists()
    assert_quiet(run_hook(shell, tool_payload("new"), env, wrapper=UMASK_022))
    assert (ids_in(events), mode(events)) == (["new"], 0o600)


@pytest.mark.parametrize("shell", SHELL_IDS)
@pytest.mark.parametrize(
    ("value", "rotates"),
    [
        ("abc", False),
        ("", False),
        ("-5", False),
        ("1e6", False),
        ("0", False),
        ("20 000", False),
        ("9" * 19, False),
        ("20000", True),
    ],
)
def test_bad_max_file_bytes_falls_back_to_the_default(shell: str, value: str, rotates: bool, tmp_path: Path) -> None:
    """A value that is not a positive integer means 64 MiB, silently; AGENTWATCH_DEBUG=1 says so in one line.

    The line is over 1 MiB, so the size is checked on every call: a value misread as small would rotate.
    """
    events = tmp_path / "events.jsonl"
    events.write_bytes(tool_payload("old", 30_000) + b"\n")
    payload = tool_payload("big", 1_100_000)
    env = base_env(events, tmp_path, AGENTWATCH_MAX_FILE_BYTES=value, AGENTWATCH_MAX_LINE_BYTES="2000000")
    assert_quiet(run_hook(shell, payload, env))
    assert events.with_name("events.jsonl.1").exists() is rotates
    proc = run_hook(shell, payload, {**env, "AGENTWATCH_DEBUG": "1"})
    assert (proc.returncode, proc.stdout) == (0, b"")
    if rotates or value == "":  # empty is unset: the default, nothing to report
        assert proc.stderr == b""
    else:
        [message] = proc.stderr.decode().splitlines()
        assert message.startswith(f"agentwatch-hook: AGENTWATCH_MAX_FILE_BYTES has value '{value}'")


@pytest.mark.parametrize("shell", ["dash", "busybox"])
def test_a_held_lock_is_respected_and_a_stale_one_removed(shell: str, tmp_path: Path) -> None:
    """A lock left by a killed hook: no rename while the file is under twice the limit, then it is taken as stale."""
    limit = 20_000
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(tool_payload(f"old{i}") + b"\n" for i in range(100)))
    assert limit < events.stat().st_size < 2 * limit
    (tmp_path / LOCK).mkdir()
    env = base_env(events, tmp_path, AGENTWATCH_MAX_FILE_BYTES=str(limit))
    for i in range(40):
        assert_quiet(run_hook(shell, tool_payload(f"held{i}"), env))
    rotated = events.with_name("events.jsonl.1")
    assert not rotated.exists()
    events.write_bytes(events.read_bytes() * 2)
    i = 0
    while not rotated.exists():
        assert i < 200, "never rotated"
        assert_quiet(run_hook(shell, tool_payload(f"t{i}"), env))
        i += 1
    assert not (tmp_path / LOCK).exists()


WRITER = """
k=$1; shift
i=0
while [ "$i" -lt "$LINES" ]; do
    printf '{"session_id":"s-rot","hook_event_name":"PreToolUse","tool_name":"Read","tool_use_id":"w%s-%s","tool_input":{"file_path":"/p/%s"}}' "$k" "$i" "$PAD" | "$@" || exit 1
    i=$((i + 1))
done
"""


@reliability(
    "Security",
    "parallel hooks rotating under ingest",
    injected="20 hooks in parallel (dash, bash, bash --posix, busybox) x 200 events, AGENTWATCH_MAX_FILE_BYTES=100000 (about 10 rotations), ingest running",
    checked="every event in the Redis log exactly once, no bad line; .1 past the limit (renamed once, never a fresh file)",
)
def test_parallel_hooks_rotating_under_ingest_keep_every_line_once(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    writers, per_writer, limit = 20, 200, 100_000
    events = tmp_path / "claude" / "events.jsonl"
    events.parent.mkdir()
    ingest = start_ingest(redis_server.url, events, prefix, "--from", "start", "--stream-cap", "100000")
    env = {
        **base_env(events, tmp_path, AGENTWATCH_MAX_FILE_BYTES=str(limit)),
        "LINES": str(per_writer),
        "PAD": "x" * 150,
    }
    try:
        procs = [
            subprocess.Popen(
                ["dash", "-c", WRITER, "writer", str(k), *shell_argv(SHELL_IDS[k % len(SHELL_IDS)]), str(HOOK)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for k in range(writers)
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=100)
            assert (proc.returncode, out, err) == (0, b"", b"")
        total = writers * per_writer
        stats = Keys(prefix).stats
        with contextlib.suppress(TimeoutError):  # lines lost: the counts below say how many
            wait_for(lambda: int(redis_server.cli("HGET", stats, "lines").strip() or 0) >= total, timeout=30)
    finally:
        ingest.stop()
    assert redis_server.cli("HGET", stats, "lines").strip() == str(total)
    assert redis_server.cli("HGET", stats, "rejected").strip() in ("", "0")
    counts = Counter(stream_tool_ids(redis_server, prefix))
    expected = {f"w{k}-{i}" for k in range(writers) for i in range(per_writer)}
    assert set(counts) == expected, f"missing {len(expected - set(counts))}, unexpected {len(set(counts) - expected)}"
    assert [i for i, n in counts.items() if n != 1] == []
    rotated = events.with_name("events.jsonl.1")
    assert rotated.stat().st_size > limit
    assert sorted(p.name for p in events.parent.iterdir()) == ["events.jsonl", "events.jsonl.1"]


# ---- ingest's start-up check


@reliability(
    "Security",
    "readable events file reported",
    injected="events file 0644 in a 0755 directory when ingest starts",
    checked="one warning each, naming the path, its mode and the chmod that fixes it",
)
def test_ingest_warns_once_about_a_readable_events_file(redis_server: RedisServer, prefix: str, tmp_path: Path) -> None:
    events = tmp_path / "claude" / "events.jsonl"
    events.parent.mkdir()
    events.parent.chmod(0o755)
    events.write_bytes(tool_payload("t0") + b"\n")
    events.chmod(0o644)
    ingest = start_ingest(redis_server.url, events, prefix, "--from", "start")
    try:
        file_line = ingest.wait_line(f"chmod 600 {events}")
        dir_line = ingest.wait_line(f"chmod 700 {events.parent}")
        ingest.wait_line("ingest: reading")
    finally:
        ingest.stop()
    assert f"events file {events} has mode 0644" in file_line and "WARNING" in file_line
    assert f"events directory {events.parent} has mode 0755" in dir_line
    assert sum("chmod" in line for line in ingest.lines) == 2


def test_warn_readable_names_each_readable_path(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.permissions")
    events = tmp_path / "d" / "events.jsonl"
    assert warn_readable(events, logger) == []  # nothing there yet: the hook will create it private
    events.parent.mkdir(mode=0o700)
    events.parent.chmod(0o700)
    events.write_bytes(b"")
    events.chmod(0o600)
    assert warn_readable(events, logger) == []
    events.chmod(0o640)
    rotated = events.with_name("events.jsonl.1")
    rotated.write_bytes(b"")
    rotated.chmod(0o604)
    with caplog.at_level(logging.WARNING, logger="test.permissions"):
        warnings = warn_readable(events, logger)
    assert warnings == [
        f"events file {events} has mode 0640: readable by group, and it holds raw prompts and tool output; fix: chmod 600 {events}",
        f"events file {rotated} has mode 0604: readable by others, and it holds raw prompts and tool output; fix: chmod 600 {rotated}",
    ]
    assert [r.getMessage() for r in caplog.records] == warnings


def test_warn_readable_quotes_the_path_in_the_fix(tmp_path: Path) -> None:
    events = tmp_path / "my dir" / "events.jsonl"
    events.parent.mkdir()
    events.parent.chmod(0o750)
    [warning] = warn_readable(events, logging.getLogger("test.permissions"))
    assert warning.endswith(
        f"readable by group, and it holds raw prompts and tool output; fix: chmod 700 '{events.parent}'"
    )
    assert os.stat(events.parent).st_mode & 0o777 == 0o750  # reported, never changed
