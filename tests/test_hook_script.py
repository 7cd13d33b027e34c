"""hooks/agentwatch-hook.sh under dash, bash, bash --posix and busybox sh, with real processes and files."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOOK = ROOT / "hooks" / "agentwatch-hook.sh"
FIXTURE = Path("/work/shared/fixtures/claude-code-session.jsonl")
DEFAULT_CAP = 65536

SHELLS = {
    "dash": ["dash"],
    "bash": ["bash"],
    "bash-posix": ["bash", "--posix"],
    "busybox": ["busybox", "sh"],
}
# The four differ where it matters: dash has no EPOCHREALTIME (runs date), bash and busybox print through
# stdio with a 4 KiB buffer, dash writes big strings directly.
SHELL_IDS = list(SHELLS)

reliability = pytest.mark.reliability


def shell_argv(name: str) -> list[str]:
    argv = SHELLS[name]
    if shutil.which(argv[0]) is None:
        pytest.fail(f"{argv[0]} is not installed: the hook must be tested under it (apt-get install {argv[0]})")
    return argv


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: this test needs it (apt-get install {tool})")
    return path


def base_env(events: Path, home: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "AGENTWATCH_EVENTS_FILE": str(events)}
    env.update(extra)
    return env


def run_hook(
    shell: str, payload: bytes, env: dict[str, str], wrapper: list[str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    argv = (wrapper or []) + shell_argv(shell) + [str(HOOK)]
    return subprocess.run(argv, input=payload, env=env, capture_output=True, timeout=30, check=False)


def assert_quiet(proc: subprocess.CompletedProcess[bytes]) -> None:
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def lines_of(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the file must end with a complete line"
    return data[:-1].split(b"\n")


def fixture_payloads() -> list[dict[str, Any]]:
    """The fixture's payloads without `_received_at`, which stands for the stamp our hook adds."""
    payloads = []
    for line in FIXTURE.read_text().splitlines():
        record = json.loads(line)
        record.pop("_received_at", None)
        payloads.append(record)
    return payloads


def big_post_tool_use(marker: str, size: int) -> dict[str, Any]:
    """A Read PostToolUse whose tool_response holds `size` bytes of text; tool_use_id comes after it."""
    chunk = 'let s = "quoted {not: json}";\\n\t[1, 2] // ' + marker + "\n"
    content = (chunk * (size // len(chunk) + 1))[:size]
    return {
        "session_id": "sess-" + marker,
        "transcript_path": "/home/u/.claude/projects/p/sess.jsonl",
        "cwd": "/home/u/p",
        "permission_mode": "default",
        "hook_event_name": "PostToolUse",
        "agent_id": "agent-" + marker,
        "agent_type": "Explore",
        "tool_name": "Read",
        "tool_input": {"file_path": "/home/u/p/big.ts", "meta": {"tool_use_id": "nested-decoy"}},
        "tool_response": {"type": "text", "file": {"filePath": "/x", "content": content, "tool_use_id": "decoy2"}},
        "tool_use_id": "toolu_" + marker,
        "duration_ms": 12,
    }


@pytest.fixture
def events(tmp_path: Path) -> Path:
    return tmp_path / "state" / "events.jsonl"


@pytest.mark.parametrize("shell", SHELL_IDS)
def test_fixture_lines_are_stamped_one_line_each(shell: str, tmp_path: Path, events: Path) -> None:
    """Each fixture payload becomes one line: "_received_at" first, then the payload unchanged."""
    payloads = fixture_payloads()
    env = base_env(events, tmp_path)
    before = time.time_ns() // 1_000_000
    for payload in payloads:
        assert_quiet(run_hook(shell, compact(payload), env))
    after = time.time_ns() // 1_000_000
    lines = lines_of(events)
    assert len(lines) == len(payloads)
    for line, payload in zip(lines, payloads, strict=True):
        assert re.match(rb'\{"_received_at":\d+,"', line), line[:40]
        record = json.loads(line)
        stamp = record.pop("_received_at")
        assert type(stamp) is int
        assert before - 5 <= stamp <= after + 5
        assert record == payload


@pytest.mark.parametrize("shell", SHELL_IDS)
def test_bypass_writes_nothing(shell: str, tmp_path: Path, events: Path) -> None:
    env = base_env(events, tmp_path, AGENTWATCH_BYPASS="1")
    assert_quiet(run_hook(shell, compact({"hook_event_name": "Stop"}), env))
    assert not events.parent.exists()


@pytest.mark.parametrize("shell", SHELL_IDS)
def test_missing_directory_is_created(shell: str, tmp_path: Path) -> None:
    events = tmp_path / "a" / "b" / "c" / "events.jsonl"
    assert_quiet(run_hook(shell, b'{"hook_event_name":"Stop"}', base_env(events, tmp_path)))
    assert json.loads(events.read_bytes())["hook_event_name"] == "Stop"


@pytest.mark.parametrize("shell", SHELL_IDS)
def test_default_events_file_is_under_home(shell: str, tmp_path: Path) -> None:
    env = base_env(tmp_path / "unused", tmp_path)
    del env["AGENTWATCH_EVENTS_FILE"]
    assert_quiet(run_hook(shell, b'{"hook_event_name":"Stop"}', env))
    assert len(lines_of(tmp_path / ".claude" / "agentwatch" / "events.jsonl")) == 1


@pytest.mark.parametrize("shell", SHELL_IDS)
def test_no_home_and_no_events_file_is_silent(shell: str, tmp_path: Path) -> None:
    proc = run_hook(shell, b'{"hook_event_name":"Stop"}', {"PATH": os.environ["PATH"]})
    assert_quiet(proc)


@pytest.mark.parametrize("shell", SHELL_IDS)
@pytest.mark.parametrize("size", [500, 40_000])
def test_directory_in_place_of_file_is_skipped_silently(shell: str, size: int, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.mkdir()
    payload = compact({"hook_event_name": "Stop", "pad": "x" * size})
    assert_quiet(run_hook(shell, payload, base_env(events, tmp_path)))
    assert list(events.iterdir()) == []


@pytest.mark.parametrize("shell", SHELL_IDS)
def test_file_in_place_of_directory_is_skipped_silently(shell: str, tmp_path: Path) -> None:
    (tmp_path / "blocker").write_bytes(b"")
    events = tmp_path / "blocker" / "sub" / "events.jsonl"
    assert_quiet(run_hook(shell, b'{"hook_event_name":"Stop"}', base_env(events, tmp_path)))
    assert (tmp_path / "blocker").read_bytes() == b""


@pytest.fixture
def nobody_dir() -> Iterator[tuple[Path, list[str]]]:
    """A world-reachable directory and the command prefix that runs as its unprivileged owner.

    Root ignores file modes, so as root the hook runs as nobody; otherwise as the current user.
    """
    path = Path(tempfile.mkdtemp(prefix="agentwatch-hook-test-"))
    try:
        path.chmod(0o755)
        wrapper: list[str] = []
        if os.geteuid() == 0:
            need("setpriv")
            os.chown(path, 65534, 65534)
            wrapper = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        yield path, wrapper
    finally:
        shutil.rmtree(path)


def as_owner(wrapper: list[str], argv: list[str]) -> None:
    subprocess.run(wrapper + argv, check=True, timeout=10)


@pytest.mark.parametrize("shell", SHELL_IDS)
@pytest.mark.parametrize("size", [500, 40_000])
def test_read_only_file_is_skipped_silently(shell: str, size: int, nobody_dir: tuple[Path, list[str]]) -> None:
    path, wrapper = nobody_dir
    events = path / "events.jsonl"
    as_owner(wrapper, ["sh", "-c", 'printf "old\\n" > "$1" && chmod 0444 "$1"', "sh", str(events)])
    payload = compact({"hook_event_name": "Stop", "pad": "x" * size})
    assert_quiet(run_hook(shell, payload, base_env(events, path), wrapper=wrapper))
    assert events.read_bytes() == b"old\n"


@pytest.mark.parametrize("shell", SHELL_IDS)
def test_read_only_directory_is_skipped_silently(shell: str, nobody_dir: tuple[Path, list[str]]) -> None:
    path, wrapper = nobody_dir
    as_owner(wrapper, ["chmod", "0555", str(path)])
    events = path / "events.jsonl"
    assert_quiet(run_hook(shell, b'{"hook_event_name":"Stop"}', base_env(events, path), wrapper=wrapper))
    assert not events.exists()


@pytest.mark.parametrize("shell", SHELL_IDS)
def test_debug_reports_on_stderr_and_still_exits_0(shell: str, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.mkdir()
    proc = run_hook(shell, b'{"hook_event_name":"Stop"}', base_env(events, tmp_path, AGENTWATCH_DEBUG="1"))
    assert (proc.returncode, proc.stdout) == (0, b"")
    assert b"agentwatch-hook: cannot append to" in proc.stderr


@pytest.mark.parametrize("shell", SHELL_IDS)
@pytest.mark.parametrize(
    "payload",
    [b"", b"\n", b"[1,2]", b'"{}"', b"null", b' {"a":1}', b'{"a":1', b"not json {}", b"\x00\x00"],
    ids=["empty", "newline", "array", "string", "null", "leading-space", "unclosed", "text", "nul"],
)
def test_non_object_stdin_writes_nothing(shell: str, payload: bytes, tmp_path: Path, events: Path) -> None:
    assert_quiet(run_hook(shell, payload, base_env(events, tmp_path)))
    assert not events.exists() or events.read_bytes() == b""


@pytest.mark.parametrize("shell", SHELL_IDS)
@pytest.mark.parametrize("payload", [b"{}", b"{ }", b"{\r\n}\r\n", b"{\t \n}"])
def test_empty_object_gets_only_the_stamp(shell: str, payload: bytes, tmp_path: Path, events: Path) -> None:
    assert_quiet(run_hook(shell, payload, base_env(events, tmp_path)))
    [line] = lines_of(events)
    assert list(json.loads(line)) == ["_received_at"]


@pytest.mark.parametrize("shell", SHELL_IDS)
def test_raw_cr_lf_in_the_payload_give_one_line(shell: str, tmp_path: Path, events: Path) -> None:
    payload = {"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt": "two\nlines\r\nhere"}
    pretty = json.dumps(payload, indent=2).replace("\n", "\r\n").encode() + b"\r\n"
    assert pretty.count(b"\n") > 3
    assert_quiet(run_hook(shell, pretty, base_env(events, tmp_path)))
    [line] = lines_of(events)
    record = json.loads(line)
    assert type(record.pop("_received_at")) is int
    assert record == payload


@reliability(
    "Security",
    "the hook never runs the payload",
    injected="command substitutions and backticks inside the payload",
    checked="nothing executed; the payload written as data",
)
@pytest.mark.parametrize("shell", SHELL_IDS)
def test_payload_is_data_never_code(shell: str, tmp_path: Path, events: Path) -> None:
    trap = tmp_path / "pwned"
    text = f"$(touch {trap}) `touch {trap}` ${{HOME}} %s %n \\\\ * ?"
    payload = {"hook_event_name": "UserPromptSubmit", "prompt": text, "k": "-n"}
    assert_quiet(run_hook(shell, compact(payload), base_env(events, tmp_path)))
    [line] = lines_of(events)
    assert json.loads(line)["prompt"] == text
    assert not trap.exists()


@pytest.mark.parametrize("shell", SHELL_IDS)
@pytest.mark.parametrize("cap_delta", [-1, 0, 1])
def test_cap_counts_bytes_not_characters(shell: str, cap_delta: int, tmp_path: Path, events: Path) -> None:
    """A UTF-8 payload right at the cap, under a UTF-8 locale: the line may be exactly the cap, not one more."""
    payload = compact({"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt": "é€😀" * 300})
    line_len = len(payload) + len(b'"_received_at":1795528086105,') + 1  # plus newline
    cap = line_len + cap_delta
    env = base_env(events, tmp_path, AGENTWATCH_MAX_LINE_BYTES=str(cap), LANG="C.UTF-8", LC_ALL="C.UTF-8")
    assert_quiet(run_hook(shell, payload, env))
    [line] = lines_of(events)
    assert len(line) + 1 <= cap
    record = json.loads(line)
    if cap_delta >= 0:
        assert record["prompt"] == "é€😀" * 300
    else:
        assert record["_truncated"] is True
        assert record["_original_bytes"] == len(payload)
        assert "prompt" not in record


@pytest.mark.parametrize("shell", SHELL_IDS)
def test_oversize_payload_keeps_identifying_fields(shell: str, tmp_path: Path, events: Path) -> None:
    payload = compact(big_post_tool_use("m1", 1 << 20))
    assert_quiet(run_hook(shell, payload, base_env(events, tmp_path)))
    [line] = lines_of(events)
    assert len(line) + 1 <= DEFAULT_CAP
    record = json.loads(line)
    assert type(record.pop("_received_at")) is int
    assert record == {
        "hook_event_name": "PostToolUse",
        "session_id": "sess-m1",
        "agent_id": "agent-m1",
        "agent_type": "Explore",
        "tool_name": "Read",
        "tool_use_id": "toolu_m1",
        "_truncated": True,
        "_original_bytes": len(payload),
    }


AGENT_INPUT = {
    "description": 'Audit "checkout" \\ módulo\tnow',
    "prompt": "p" * 100_000,
    "subagent_type": "general-purpose",
    "model": "haiku",
}


@pytest.mark.parametrize("shell", SHELL_IDS)
@pytest.mark.parametrize("tool", ["Agent", "Task"])
def test_oversize_agent_call_keeps_subagent_fields(shell: str, tool: str, tmp_path: Path, events: Path) -> None:
    payload = compact(
        {
            "session_id": "s",
            "hook_event_name": "PreToolUse",
            "tool_name": tool,
            "tool_input": AGENT_INPUT,
            "tool_use_id": "toolu_A",
        }
    )
    assert_quiet(run_hook(shell, payload, base_env(events, tmp_path)))
    [line] = lines_of(events)
    record = json.loads(line)
    assert record["tool_input"] == {
        "subagent_type": "general-purpose",
        "model": "haiku",
        "description": AGENT_INPUT["description"],
    }
    assert (record["tool_name"], record["tool_use_id"], record["_truncated"]) == (tool, "toolu_A", True)


@pytest.mark.parametrize("shell", SHELL_IDS)
def test_oversize_other_tool_keeps_no_tool_input(shell: str, tmp_path: Path, events: Path) -> None:
    """tool_input fields are kept for Agent/Task only; TaskCreate is another tool."""
    payload = compact({"hook_event_name": "PreToolUse", "tool_name": "TaskCreate", "tool_input": AGENT_INPUT})
    assert_quiet(run_hook(shell, payload, base_env(events, tmp_path)))
    record = json.loads(lines_of(events)[0])
    assert "tool_input" not in record
    assert record["tool_name"] == "TaskCreate"


@pytest.mark.parametrize("shell", SHELL_IDS)
def test_truncated_line_fits_a_small_cap_and_drops_risky_values(shell: str, tmp_path: Path, events: Path) -> None:
    """Values too long to keep, with invalid escapes, or too long for the cap are dropped, never cut."""
    payload = (
        b'{"hook_event_name":"PreToolUse","session_id":"' + b"s" * 2000 + b'",'
        b'"agent_id":"bad\\q escape","agent_type":"ok\\u00e9\\"","tool_name":"Agent",'
        b'"tool_input":{"description":"' + b"d" * 60 + b'","subagent_type":"Plan","model":"' + b"m" * 200 + b'",'
        b'"prompt":"' + b"p" * 500 + b'"}}'
    )
    env = base_env(events, tmp_path, AGENTWATCH_MAX_LINE_BYTES="300")
    assert_quiet(run_hook(shell, payload, env))
    [line] = lines_of(events)
    assert len(line) + 1 <= 300
    record = json.loads(line)
    assert "session_id" not in record and "agent_id" not in record
    assert record["agent_type"] == 'oké"'
    assert record["tool_input"] == {"subagent_type": "Plan", "description": "d" * 60}


@pytest.mark.parametrize("shell", SHELL_IDS)
@pytest.mark.parametrize("value", ["abc", "", "-5", "1e6", "0"])
def test_bad_max_line_bytes_falls_back_to_default(shell: str, value: str, tmp_path: Path, events: Path) -> None:
    payload = compact({"hook_event_name": "Stop", "pad": "x" * 1000})
    assert_quiet(run_hook(shell, payload, base_env(events, tmp_path, AGENTWATCH_MAX_LINE_BYTES=value)))
    assert json.loads(lines_of(events)[0])["pad"] == "x" * 1000


def fake_date(bin_dir: Path, style: str, log: Path) -> None:
    """A `date` like macOS's: no %N, so "+%s.%3N" prints "<secs>.3N" (style "bsd") or "<secs>.%3N"."""
    real = need("date")
    bin_dir.mkdir()
    tail = "3N" if style == "bsd" else "%%3N"  # printf format: prints %3N
    (bin_dir / "date").write_text(f'#!/bin/sh\necho called >> "{log}"\nprintf "%s.{tail}\\n" "$({real} +%s)"\n')
    (bin_dir / "date").chmod(0o755)


@pytest.mark.parametrize("shell", SHELL_IDS)
@pytest.mark.parametrize("style", ["bsd", "literal"])
def test_date_without_nanoseconds_still_gives_integer_ms(shell: str, style: str, tmp_path: Path, events: Path) -> None:
    log = tmp_path / "date-calls"
    fake_date(tmp_path / "bin", style, log)
    env = base_env(events, tmp_path, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    before = time.time_ns() // 1_000_000
    assert_quiet(run_hook(shell, b'{"hook_event_name":"Stop"}', env))
    after = time.time_ns() // 1_000_000
    stamp = json.loads(lines_of(events)[0])["_received_at"]
    assert type(stamp) is int
    assert before - 1000 <= stamp <= after
    if shell == "dash":  # no EPOCHREALTIME: date ran, and second precision it is
        assert log.read_text() == "called\n"
        assert stamp % 1000 == 0


def test_inherited_epochrealtime_is_not_trusted(tmp_path: Path, events: Path) -> None:
    """dash has no clock variable: a stale EPOCHREALTIME from the environment must not become the stamp."""
    env = base_env(events, tmp_path, EPOCHREALTIME="1000000000.123456")
    before = time.time_ns() // 1_000_000
    assert_quiet(run_hook("dash", b'{"hook_event_name":"Stop"}', env))
    assert json.loads(lines_of(events)[0])["_received_at"] >= before - 5


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_common_path_runs_at_most_two_programs(shell: str, tmp_path: Path, events: Path) -> None:
    """The cost of a hook is mostly process starts: a small payload runs tr and date at most.

    Plus, on about one call in 20 000 for this 50-byte line, find for the rotation's size check.
    """
    need("strace")
    events.parent.mkdir()
    trace = tmp_path / "trace"
    argv = ["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace), *shell_argv(shell), str(HOOK)]
    proc = subprocess.run(argv, input=b'{"hook_event_name":"Stop"}', env=base_env(events, tmp_path), timeout=30)
    assert proc.returncode == 0
    programs = re.findall(r'execve\("([^"]+)"', trace.read_text())
    assert len(lines_of(events)) == 1
    others = [p for p in programs[1:] if os.path.basename(p) != "find"]  # the first one is the shell itself
    assert len(others) <= 2 and len(programs) - len(others) <= 2, programs


def write_calls(trace_prefix: Path, target: Path) -> list[int]:
    """Sizes of the write() calls on `target` in `strace -ff -y -e trace=write -o prefix` logs (one per process)."""
    sizes = []
    for log in sorted(trace_prefix.parent.glob(trace_prefix.name + ".*")):
        # 1234 write(3</path/events.jsonl>, ""..., 40001) = 40001
        for m in re.finditer(r"^write\(\d+<([^>]*)>.*\) += (-?\d+)", log.read_text(), re.MULTILINE):
            if m.group(1) == str(target):
                sizes.append(int(m.group(2)))
    return sizes


def padded(line_len: int) -> bytes:
    """A payload whose stamped line (13-digit stamp, newline included) is exactly `line_len` bytes."""
    base = compact({"hook_event_name": "PostToolUse", "tool_use_id": "toolu_w", "pad": ""})
    stamped = len(base) + len(b'"_received_at":1795528086105,') + 1
    return compact({"hook_event_name": "PostToolUse", "tool_use_id": "toolu_w", "pad": "x" * (line_len - stamped)})


@pytest.mark.parametrize("shell", SHELL_IDS)
@pytest.mark.parametrize("line_len", [1_000, 4_096, 4_097, 8_193, 40_000, 200_000, 1 << 20])
def test_strace_one_write_per_line(shell: str, line_len: int, tmp_path: Path, events: Path) -> None:
    """strace shows exactly one write() on the events file, holding the whole line with its newline.

    4096 is the builtin printf's limit, above it dd writes; 1 MiB is over the cap and gets truncated.
    """
    need("strace")
    payload = padded(line_len)
    prefix = tmp_path / "trace"
    env = base_env(events, tmp_path, AGENTWATCH_MAX_LINE_BYTES="300000")
    argv = ["strace", "-ff", "-qq", "-y", "-s", "0", "-e", "trace=write", "-o", str(prefix), *shell_argv(shell)]
    proc = subprocess.run([*argv, str(HOOK)], input=payload, env=env, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    [line] = lines_of(events)
    record = json.loads(line)
    if line_len <= 300_000:
        assert len(line) + 1 == line_len
        assert record["pad"] == json.loads(payload)["pad"]
    else:
        assert record["_truncated"] is True
    assert write_calls(prefix, events) == [events.stat().st_size]


def spawn_many(shell: str, payloads: list[bytes], tmp_path: Path, env: dict[str, str]) -> None:
    """Starts every hook before waiting for any, each reading its payload from a file."""
    sources = []
    for i, payload in enumerate(payloads):
        source = tmp_path / f"payload-{i}.json"
        source.write_bytes(payload)
        sources.append(source)
    procs = []
    for source in sources:
        with source.open("rb") as stdin:
            argv = [*shell_argv(shell), str(HOOK)]
            procs.append(subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env))
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert (proc.returncode, out, err) == (0, b"", b"")


@reliability(
    "Load",
    "parallel hooks, big lines",
    injected="50 hooks at once with ~100 KiB payloads",
    checked="every line valid JSON, each payload once",
)
@pytest.mark.parametrize("shell", SHELL_IDS)
def test_parallel_big_lines_never_interleave(shell: str, tmp_path: Path, events: Path) -> None:
    """50 hooks at once, ~100 KiB each (above every shell's printf buffer): 50 intact lines."""
    payloads = [big_post_tool_use(f"mark{i:03d}x", 100_000) for i in range(50)]
    env = base_env(events, tmp_path, AGENTWATCH_MAX_LINE_BYTES="200000")
    spawn_many(shell, [compact(p) for p in payloads], tmp_path, env)
    lines = lines_of(events)
    assert len(lines) == 50
    by_marker = {}
    for line in lines:
        record = json.loads(line)
        record.pop("_received_at")
        by_marker[record["tool_use_id"]] = record
    assert sorted(by_marker) == sorted(p["tool_use_id"] for p in payloads)
    for p in payloads:
        assert by_marker[p["tool_use_id"]] == p
        assert events.read_bytes().count(p["tool_use_id"].encode()) == 1


@pytest.mark.parametrize("shell", SHELL_IDS)
def test_parallel_oversize_lines_are_truncated_intact(shell: str, tmp_path: Path, events: Path) -> None:
    """The same at the default cap: every payload becomes one short, valid, truncated line."""
    payloads = [big_post_tool_use(f"mark{i:03d}x", 100_000) for i in range(50)]
    spawn_many(shell, [compact(p) for p in payloads], tmp_path, base_env(events, tmp_path))
    lines = lines_of(events)
    assert len(lines) == 50
    records = [json.loads(line) for line in lines]
    assert all(r["_truncated"] is True and len(line) < DEFAULT_CAP for r, line in zip(records, lines, strict=True))
    assert sorted(r["tool_use_id"] for r in records) == sorted(p["tool_use_id"] for p in payloads)
    for p in payloads:
        assert events.read_bytes().count(p["tool_use_id"].encode()) == 1


AWKS = {"default": None, "mawk": ["mawk"], "busybox": ["busybox", "awk"]}


@pytest.mark.parametrize("awk", list(AWKS))
def test_truncation_works_with_each_awk(awk: str, tmp_path: Path, events: Path) -> None:
    """The shortening runs in awk: the same lines from the system's awk, mawk (Debian's) and busybox awk."""
    env = base_env(events, tmp_path)
    argv = AWKS[awk]
    if argv is not None:
        need(argv[0])
        shim = tmp_path / "bin"
        shim.mkdir()
        (shim / "awk").write_text(f'#!/bin/sh\nexec {" ".join(argv)} "$@"\n')
        (shim / "awk").chmod(0o755)
        env["PATH"] = f"{shim}:{env['PATH']}"
    big = compact(big_post_tool_use("k", 300_000))
    agent = compact({"hook_event_name": "PreToolUse", "tool_name": "Agent", "tool_input": AGENT_INPUT})
    for payload in (big, agent):
        assert_quiet(run_hook("dash", payload, env))
    first, second = (json.loads(line) for line in lines_of(events))
    assert (first["tool_use_id"], first["agent_id"], first["_original_bytes"]) == ("toolu_k", "agent-k", len(big))
    assert second["tool_input"] == {k: AGENT_INPUT[k] for k in ("subagent_type", "model", "description")}


def test_bench_reports_every_payload_and_variant() -> None:
    """bench/hook_bench.py runs (one iteration; the figures themselves are not judged here)."""
    need("jq")
    spec = importlib.util.spec_from_file_location("hook_bench", ROOT / "bench" / "hook_bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.run(1)
    assert list(figures["results"]) == ["1 KiB", "16 KiB", "1 MiB"]
    for by_variant in figures["results"].values():
        # bare sh, today's hook, the hook before rotation (from git), rotating every call, bash, jq
        assert len(by_variant) == 6
        assert {bench.PREVIOUS, bench.ROTATING} <= set(by_variant)
        assert all(f["median_ms"] > 0 and f["p99_ms"] >= f["median_ms"] for f in by_variant.values())
    assert "| 1 MiB | naive `jq -c` hook |" in bench.table(figures)
