"""`agentwatch hooks install|uninstall|print` on real settings files, run as a real process with HOME in tmp_path."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentwatch.hooks import EVENTS, NO_MATCHER, PROJECT_COMMAND

ROOT = Path(__file__).resolve().parent.parent
HOOK = ROOT / "hooks" / "agentwatch-hook.sh"
ENTRY = "import sys; from agentwatch.hooks import main; sys.exit(main(sys.argv[1:]))"

FOREIGN: dict[str, Any] = {
    "model": "opus",
    "permissions": {"allow": ["Bash(npm test:*)"], "deny": []},
    "env": {"FOO": "bär"},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "/usr/local/bin/guard.sh", "timeout": 3}]},
            {"matcher": "*", "hooks": [{"type": "command", "command": "other-logger --all"}]},
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
        "PostToolBatch": [{"hooks": [{"type": "http", "url": "http://127.0.0.1:9/x"}]}],
    },
    "statusLine": {"type": "command", "command": "status.sh"},
}

reliability = pytest.mark.reliability


def cli(*args: str, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    argv = [sys.executable, "-c", ENTRY, *args]
    return subprocess.run(argv, env=env, cwd=cwd or home, capture_output=True, text=True, timeout=60, check=False)


def ours(handler: Any) -> bool:
    return isinstance(handler, dict) and "agentwatch-hook.sh" in str(handler.get("command", ""))


def our_handlers(data: dict[str, Any], event: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(g, h) for g in data["hooks"].get(event, []) for h in g.get("hooks", []) if ours(h)]


def backups(settings: Path) -> list[Path]:
    return sorted(settings.parent.glob(settings.name + ".agentwatch-backup-*"))


def write_settings(path: Path, data: Any) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps(data, indent=4).encode()
    path.write_bytes(body)
    return body


def assert_installed(data: dict[str, Any], command: str) -> None:
    for event in EVENTS:
        [(group, handler)] = our_handlers(data, event)
        assert handler == {"type": "command", "command": command, "timeout": 5}
        if event in NO_MATCHER:
            assert "matcher" not in group
        else:
            assert group["matcher"] == "*"


def strip_ours(data: dict[str, Any]) -> dict[str, Any]:
    """The settings as they would be without our handlers (and the groups holding only ours)."""
    data = copy.deepcopy(data)
    for event in list(data.get("hooks", {})):
        groups = [
            {**g, "hooks": [h for h in g["hooks"] if not ours(h)]}
            for g in data["hooks"][event]
            if [h for h in g["hooks"] if not ours(h)]
        ]
        if groups:
            data["hooks"][event] = groups
        else:
            del data["hooks"][event]
    return data


def test_install_twice_keeps_foreign_entries_and_changes_nothing_the_second_time(tmp_path: Path) -> None:
    settings = tmp_path / ".claude" / "settings.json"
    original = write_settings(settings, FOREIGN)

    first = cli("install", home=tmp_path)
    assert first.returncode == 0, first.stderr
    [backup] = backups(settings)
    assert backup.read_bytes() == original
    after_first = settings.read_bytes()
    data = json.loads(after_first)
    script = tmp_path / ".claude" / "agentwatch" / "agentwatch-hook.sh"
    assert_installed(data, str(script))
    assert strip_ours(data) == FOREIGN
    assert script.read_bytes() == HOOK.read_bytes()
    assert script.stat().st_mode & 0o777 == 0o755

    second = cli("install", home=tmp_path)
    assert second.returncode == 0, second.stderr
    assert settings.read_bytes() == after_first
    assert backups(settings) == [backup]


def test_an_older_install_gets_the_new_events_on_the_next_install(tmp_path: Path) -> None:
    """Installs made before PermissionRequest, StopFailure and PostCompact were registered get them added."""
    settings = tmp_path / ".claude" / "settings.json"
    assert cli("install", home=tmp_path).returncode == 0
    data = json.loads(settings.read_text())
    new_events = ("PermissionRequest", "StopFailure", "PostCompact")
    assert all(our_handlers(data, event) for event in new_events)
    for event in new_events:  # what an install of the previous release wrote
        del data["hooks"][event]
    write_settings(settings, data)
    again = cli("install", home=tmp_path)
    assert again.returncode == 0, again.stderr
    data = json.loads(settings.read_text())
    assert_installed(data, str(tmp_path / ".claude" / "agentwatch" / "agentwatch-hook.sh"))


def test_installed_command_runs_the_copied_hook(tmp_path: Path) -> None:
    """The command written into settings.json, run by a shell as Claude Code does, appends the event."""
    events = tmp_path / "events dir" / "it's events.jsonl"
    assert cli("install", "--events-file", str(events), home=tmp_path).returncode == 0
    data = json.loads((tmp_path / ".claude" / "settings.json").read_bytes())
    [(_, handler)] = our_handlers(data, "SubagentStart")
    assert handler["command"].startswith("AGENTWATCH_EVENTS_FILE=")
    payload = b'{"hook_event_name":"SubagentStart","agent_id":"a1","agent_type":"Explore"}'
    proc = subprocess.run(["sh", "-c", handler["command"]], input=payload, capture_output=True, timeout=30)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert json.loads(events.read_bytes())["agent_id"] == "a1"


def test_project_install_uses_claude_project_dir(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    proc = cli("install", "--project", home=tmp_path / "home", cwd=project)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((project / ".claude" / "settings.json").read_bytes())
    assert_installed(data, PROJECT_COMMAND)
    assert (project / ".claude" / "hooks" / "agentwatch-hook.sh").read_bytes() == HOOK.read_bytes()
    assert not (tmp_path / "home" / ".claude").exists()
    env = {"PATH": os.environ["PATH"], "CLAUDE_PROJECT_DIR": str(project), "HOME": str(tmp_path / "home")}
    run = subprocess.run(["sh", "-c", PROJECT_COMMAND], input=b'{"hook_event_name":"Stop"}', env=env, timeout=30)
    assert run.returncode == 0
    assert (tmp_path / "home" / ".claude" / "agentwatch" / "events.jsonl").exists()


def test_install_creates_a_missing_settings_file_without_backup(tmp_path: Path) -> None:
    settings = tmp_path / "deep" / "dir" / "settings.json"
    assert cli("install", "--settings", str(settings), home=tmp_path).returncode == 0
    assert_installed(json.loads(settings.read_bytes()), str(tmp_path / ".claude" / "agentwatch" / "agentwatch-hook.sh"))
    assert backups(settings) == []


def test_reinstall_with_another_events_file_updates_in_place(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    write_settings(settings, FOREIGN)
    assert cli("install", "--settings", str(settings), "--events-file", "/a/e.jsonl", home=tmp_path).returncode == 0
    assert cli("install", "--settings", str(settings), "--events-file", "/b/e.jsonl", home=tmp_path).returncode == 0
    data = json.loads(settings.read_bytes())
    assert_installed(data, f"AGENTWATCH_EVENTS_FILE=/b/e.jsonl {tmp_path / '.claude/agentwatch/agentwatch-hook.sh'}")
    assert strip_ours(data) == FOREIGN


def test_install_moves_our_handler_out_of_a_narrow_matcher(tmp_path: Path) -> None:
    """Ours under matcher "Bash" would miss events: it ends up alone in a "*" group, the foreign one stays."""
    settings = tmp_path / "settings.json"
    stale = {"type": "command", "command": "/old/agentwatch-hook.sh"}
    foreign = {"type": "command", "command": "guard.sh"}
    write_settings(settings, {"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [foreign, stale, stale]}]}})
    assert cli("install", "--settings", str(settings), home=tmp_path).returncode == 0
    data = json.loads(settings.read_bytes())
    assert_installed(data, str(tmp_path / ".claude" / "agentwatch" / "agentwatch-hook.sh"))
    assert data["hooks"]["PreToolUse"][0] == {"matcher": "Bash", "hooks": [foreign]}


def test_matchers_never_catch_other_tools_by_regex(tmp_path: Path) -> None:
    """Only "*" (or no matcher): never a regex like Task.* that would also catch TaskCreate."""
    proc = cli("print", home=tmp_path)
    for event, groups in json.loads(proc.stdout)["hooks"].items():
        for group in groups:
            assert group.get("matcher", "*") == "*", event
            assert all("async" not in h for h in group["hooks"])


def test_uninstall_removes_only_ours(tmp_path: Path) -> None:
    settings = tmp_path / ".claude" / "settings.json"
    write_settings(settings, FOREIGN)
    assert cli("install", home=tmp_path).returncode == 0
    data = json.loads(settings.read_bytes())
    # one of ours sharing a group with a foreign handler: the group must stay
    data["hooks"]["PreToolUse"][0]["hooks"].append({"type": "command", "command": "/x/agentwatch-hook.sh"})
    settings.write_text(json.dumps(data))
    before = backups(settings)

    proc = cli("uninstall", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(settings.read_bytes()) == FOREIGN
    assert len(backups(settings)) == len(before) + 1

    again = settings.read_bytes()
    assert cli("uninstall", home=tmp_path).returncode == 0
    assert settings.read_bytes() == again


def test_uninstall_drops_the_hooks_key_it_emptied(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    write_settings(settings, {"model": "opus"})
    assert cli("install", "--settings", str(settings), home=tmp_path).returncode == 0
    assert cli("uninstall", "--settings", str(settings), home=tmp_path).returncode == 0
    assert json.loads(settings.read_bytes()) == {"model": "opus"}


def test_uninstall_without_settings_creates_nothing(tmp_path: Path) -> None:
    proc = cli("uninstall", home=tmp_path)
    assert proc.returncode == 0
    assert not (tmp_path / ".claude").exists()


def test_mode_and_symlink_are_kept(tmp_path: Path) -> None:
    """A private settings file stays private; a dotfiles symlink stays a symlink to the updated file."""
    real = tmp_path / "dotfiles" / "claude-settings.json"
    write_settings(real, FOREIGN)
    real.chmod(0o600)
    link = tmp_path / ".claude" / "settings.json"
    link.parent.mkdir()
    link.symlink_to(real)
    assert cli("install", home=tmp_path).returncode == 0
    assert link.is_symlink() and link.resolve() == real
    assert real.stat().st_mode & 0o777 == 0o600
    assert_installed(json.loads(real.read_bytes()), str(tmp_path / ".claude" / "agentwatch" / "agentwatch-hook.sh"))
    assert len(backups(real)) == 1
    assert list(real.parent.glob(".*.tmp")) == []


@reliability(
    "Bad input",
    "configuration: settings.json not JSON",
    injected="invalid or wrongly shaped settings.json",
    checked="one line, exit 2, the file byte-identical, no backup",
)
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            b'{"model": "opus",\n  "hooks": {}\n  "x": 1}',
            "is not valid JSON (line 3 column 3: Expecting ',' delimiter)",
        ),
        (b"", "is not valid JSON (line 1 column 1: Expecting value)"),
        (b"[1, 2]", "holds a JSON array at the top level, expected an object"),
        (b'{"hooks": []}', 'has "hooks" as a JSON array, expected an object'),
        (b'{"hooks": {"PreToolUse": {"matcher": "*"}}}', 'has "hooks.PreToolUse" as a JSON object, expected a list'),
        (b'{"a": "\xff"}', "is not UTF-8 text"),
    ],
    ids=["syntax", "empty", "array", "hooks-array", "event-object", "not-utf8"],
)
@pytest.mark.parametrize("action", ["install", "uninstall"])
def test_unusable_settings_are_refused_untouched(tmp_path: Path, body: bytes, problem: str, action: str) -> None:
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_bytes(body)
    proc = cli(action, home=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"agentwatch: {settings} {problem}")
    assert "then run again" in line
    assert settings.read_bytes() == body
    assert backups(settings) == []
    assert not (tmp_path / ".claude" / "agentwatch").exists()


def test_print_shows_every_event(tmp_path: Path) -> None:
    proc = cli("print", home=tmp_path)
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert sorted(data["hooks"]) == sorted(EVENTS)
    assert_installed(data, str(tmp_path / ".claude" / "agentwatch" / "agentwatch-hook.sh"))
    assert not (tmp_path / ".claude").exists()


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    assert cli("frobnicate", home=tmp_path).returncode == 2
    assert cli(home=tmp_path).returncode == 2
    assert cli("install", "--nope", home=tmp_path).returncode == 2
    assert cli("--help", home=tmp_path).returncode == 0
