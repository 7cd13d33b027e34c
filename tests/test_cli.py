"""The agentwatch command: the embedded one-process mode, the demo, flags, packaging and docker compose."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import websockets
import yaml

from tests.stack import PYTHON, ROOT, Proc, RedisServer, free_port, play_fixture, start_relay, wait_for
from tests.viewer import next_message

AGENTWATCH = [PYTHON, "-m", "agentwatch"]

reliability = pytest.mark.reliability


def start_up(events_file: Path, *extra: str) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(
        [*AGENTWATCH, "up", "--events-file", str(events_file), "--bind", f"127.0.0.1:{port}", *extra],
        env={"AGENTWATCH_REDIS_URL": ""},
    )
    proc.wait_line("agentwatch: open http://", timeout=20)
    return proc, f"ws://127.0.0.1:{port}/stream"


async def collect(url: str, done: Any, within: float = 30.0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with websockets.connect(url) as ws:
        async with asyncio.timeout(within):
            while True:
                message = await next_message(ws, within)
                out.append(message)
                if done(message):
                    return out


async def test_up_runs_everything_in_one_process_on_an_embedded_redis(events_file: Path) -> None:
    proc, url = start_up(events_file)
    try:
        assert "embedded in-process Redis" in proc.output

        async def watch() -> list[dict[str, Any]]:
            return await collect(url, lambda m: m.get("data", {}).get("type") == "session_end")

        viewer = asyncio.create_task(watch())
        await asyncio.sleep(0)  # let the viewer connect before the session plays (the view is live only)
        proc.wait_line("ingest:", timeout=10)
        await asyncio.to_thread(_play_when_connected, url, events_file)
        messages = await viewer
    finally:
        assert proc.stop(2) == 0  # SIGINT, as Ctrl+C
    data = [m["data"] for m in messages if m["type"] == "event"]
    assert sum(d["type"] == "agent_spawn" for d in data) == 3
    assert [d["tool"] for d in data if d["type"] == "tool_fail"] == ["Bash"]


def _play_when_connected(url: str, events_file: Path) -> None:
    stats = url.replace("ws://", "http://").replace("/stream", "/stats")
    wait_for(lambda: _viewers(stats) >= 1, what="viewer connected")
    play_fixture(events_file)


def _viewers(stats_url: str) -> int:
    import urllib.request

    try:
        with urllib.request.urlopen(stats_url, timeout=2) as r:
            return int(json.load(r)["viewers"])
    except OSError:
        return 0


async def test_up_demo_shows_a_session_without_claude_code(events_file: Path) -> None:
    proc, url = start_up(events_file, "--demo")
    try:
        messages = await collect(url, lambda m: m.get("data", {}).get("type") == "agent_spawn")
    finally:
        assert proc.stop() == 0
    assert messages[-1]["data"]["parent_id"]  # a sub-agent hanging from its parent
    assert (await asyncio.to_thread(events_file.stat)).st_size > 0


@reliability(
    "Security",
    "the demo never writes the real events file",
    injected="`agentwatch up --demo` with no --events-file, with AGENTWATCH_EVENTS_FILE set, and with --events-file "
    "naming the hook's file",
    checked="it plays into a temporary file it names (removed at exit); the real files are never created or "
    "written; naming the hook's file is refused with one line, exit 2",
)
async def test_the_demo_plays_into_its_own_file(tmp_path: Path) -> None:
    real = tmp_path / ".claude" / "agentwatch" / "events.jsonl"
    custom = tmp_path / "hook-writes-here.jsonl"
    port = free_port()
    env = {"AGENTWATCH_REDIS_URL": "", "HOME": str(tmp_path), "AGENTWATCH_EVENTS_FILE": str(custom)}
    proc = Proc([*AGENTWATCH, "up", "--demo", "--bind", f"127.0.0.1:{port}"], env=env)
    try:
        line = proc.wait_line("--demo plays invented sessions into ", timeout=20)
        played = Path(line.split("into ", 1)[1].split(" (", 1)[0])
        proc.wait_line("agentwatch: open http://", timeout=20)
        messages = await collect(f"ws://127.0.0.1:{port}/stream", lambda m: m.get("data", {}).get("type") == "tool_use")
        assert messages[-1]["data"]["tool"]
        assert played.stat().st_size > 0 and played.parent.name.startswith("agentwatch-demo-")
    finally:
        assert proc.stop() == 0
    assert not real.exists() and not custom.exists() and not played.exists()


@pytest.mark.parametrize("which", ["default", "AGENTWATCH_EVENTS_FILE"])
def test_the_demo_refuses_the_hook_s_file(tmp_path: Path, which: str) -> None:
    real = tmp_path / ".claude" / "agentwatch" / "events.jsonl"
    custom = tmp_path / "hook-writes-here.jsonl"
    named = real if which == "default" else custom
    env = {**os.environ, "HOME": str(tmp_path), "AGENTWATCH_EVENTS_FILE": str(custom) if which != "default" else ""}
    result = subprocess.run(
        [*AGENTWATCH, "up", "--demo", "--events-file", str(named)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    assert "the file your Claude Code hook writes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not real.exists() and not custom.exists()


@reliability(
    "Bad input",
    "configuration: bad values",
    injected="bad --bind, --redis-url, --queue-size, --ping-interval, an unknown command",
    checked="one line naming the flag and value, exit 2",
)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--bind", "nonsense"], "--bind has value 'nonsense'"),
        (["up", "--redis-url", "ftp://x"], "--redis-url has value 'ftp://x'"),
        (["up", "--queue-size", "many"], "--queue-size has value 'many'"),
        (["relay", "--ping-interval", "-1"], "--ping-interval has value '-1'"),
        (["frobnicate"], "unknown command 'frobnicate'"),
    ],
)
def test_bad_values_get_one_line_naming_the_flag_and_exit_2(args: list[str], message: str) -> None:
    result = subprocess.run([*AGENTWATCH, *args], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@reliability(
    "Bad input",
    "configuration: unusable events folder",
    injected="--events-file under a regular file",
    checked="one line, exit 1, the file untouched",
)
def test_unusable_events_folder_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # root ignores modes, so block the folder with a file instead
    result = subprocess.run(
        [
            *AGENTWATCH,
            "up",
            "--events-file",
            str(blocker / "sub" / "events.jsonl"),
            "--bind",
            f"127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "cannot create the events folder" in last and "Not a directory" in last
    assert blocker.read_text() == "not a folder"


def test_hooks_subcommand_is_wired() -> None:
    result = subprocess.run([*AGENTWATCH, "hooks", "print"], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert result.returncode == 0
    hooks = json.loads(result.stdout)["hooks"]
    assert {"PreToolUse", "SubagentStart", "SubagentStop", "SessionEnd"} <= set(hooks)


def test_wheel_ships_the_hook_script_and_the_page(tmp_path: Path) -> None:
    subprocess.run(
        [PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("agentwatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"hooks/agentwatch-hook.sh", "web/index.html", "web/app.js", "ingest/pricing.json"} <= names
    assert "relay/app.py" in names and "agentwatch/cli.py" in names and "contract/__init__.py" in names


def test_docker_compose_commands_exist_and_start(redis_server: RedisServer, tmp_path: Path, prefix: str) -> None:
    """No Docker engine here: run each service's command as compose would, against our Redis."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    # The events file is private to its owner (0600 in a 0700 folder): ingest must run as that user.
    assert services["ingest"]["user"] == "${AGENTWATCH_UID:-1000}:${AGENTWATCH_GID:-1000}"
    assert set(services) == {"redis", "ingest", "relay"}
    assert services["relay"]["ports"] == ["127.0.0.1:8201:8201"]
    assert any(v.endswith(":/events:ro") for v in services["ingest"]["volumes"])
    # Transcripts read-only, mounted at the host's own path: the one the payloads name.
    projects = "${AGENTWATCH_PROJECTS_DIR:-${HOME}/.claude/projects}"
    assert f"{projects}:{projects}:ro" in services["ingest"]["volumes"]
    ingest_cmd = _local(services["ingest"]["command"], redis_server, prefix)
    ingest_cmd[ingest_cmd.index("--events-file") + 1] = str(tmp_path / "events.jsonl")
    ingest = Proc([PYTHON, "-m", "agentwatch", *ingest_cmd[1:]])
    try:
        ingest.wait_line("ingest: reading")
    finally:
        assert ingest.stop() == 0
    relay_cmd = _local(services["relay"]["command"], redis_server, prefix)
    port = free_port()
    relay_cmd[relay_cmd.index("--bind") + 1] = f"127.0.0.1:{port}"
    relay, _ = start_relay(redis_server.url, prefix, port, *relay_cmd[relay_cmd.index("--bind") + 2 :])
    assert relay.stop() == 0


def _local(command: list[str], server: RedisServer, prefix: str) -> list[str]:
    assert command[0] == "agentwatch"
    return [server.url if c == "redis://redis:6379/0" else c for c in command] + ["--prefix", prefix]
