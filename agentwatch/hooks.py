"""`agentwatch hooks install|uninstall|print`: register the agentwatch hook in Claude Code's settings.json.

Our entries are recognised by a command containing ``agentwatch-hook.sh``; everything else in the settings
file (other keys, other matcher groups, other handlers) is kept as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

from contract import HOOK_EVENTS

HOOK_SCRIPT = "agentwatch-hook.sh"
EVENTS = HOOK_EVENTS  # every event agentwatch draws
# Events that ignore matchers: their group carries none.
NO_MATCHER = frozenset({"Stop", "UserPromptSubmit"})
# Matchers that select everything.
MATCH_ALL = ("*", "", None)
TIMEOUT_S = 5
PROJECT_COMMAND = '"$CLAUDE_PROJECT_DIR"/.claude/hooks/' + HOOK_SCRIPT

Json = dict[str, Any]


class SettingsError(Exception):
    """The settings file cannot be merged safely; the message is one line for the user."""


def main(argv: list[str]) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage or help
        return exc.code if isinstance(exc.code, int) else 2
    if args.action is None:
        parser.print_usage(sys.stderr)
        return 2
    try:
        if args.action == "print":
            print(json.dumps(desired_hooks(_command(args)), indent=2))
            return 0
        settings = _settings_path(args)
        if args.action == "install":
            return _install(settings, args)
        return _uninstall(settings)
    except SettingsError as exc:
        print(f"agentwatch: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"agentwatch: {exc.filename or 'settings'}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentwatch hooks", description="Register the agentwatch hook in Claude Code")
    sub = parser.add_subparsers(dest="action")

    def where(p: argparse.ArgumentParser) -> None:
        p.add_argument("--settings", type=Path, help="settings.json to edit (default: ~/.claude/settings.json)")
        p.add_argument("--project", action="store_true", help="use ./.claude/settings.json and ./.claude/hooks/")

    install = sub.add_parser("install", help="copy the hook script and merge our entries into settings.json")
    where(install)
    install.add_argument("--events-file", help="JSONL file the hook appends to (default: set by the hook)")
    uninstall = sub.add_parser("uninstall", help="remove our entries from settings.json, keep everything else")
    where(uninstall)
    show = sub.add_parser("print", help="print the hooks JSON that install merges")
    show.add_argument("--project", action="store_true", help="the command used with install --project")
    show.add_argument("--events-file", help="as for install")
    return parser


def _settings_path(args: argparse.Namespace) -> Path:
    if args.settings is not None:
        return Path(args.settings).expanduser()
    if args.project:
        return Path.cwd() / ".claude" / "settings.json"
    return Path.home() / ".claude" / "settings.json"


def _script_path(project: bool) -> Path:
    if project:
        return Path.cwd() / ".claude" / "hooks" / HOOK_SCRIPT
    return Path.home() / ".claude" / "agentwatch" / HOOK_SCRIPT


def _command(args: argparse.Namespace) -> str:
    command = PROJECT_COMMAND if args.project else shlex.quote(str(_script_path(False)))
    if args.events_file:
        events = os.path.abspath(os.path.expanduser(args.events_file))
        command = f"AGENTWATCH_EVENTS_FILE={shlex.quote(events)} {command}"
    return command


def desired_hooks(command: str) -> Json:
    """The ``{"hooks": ...}`` object install merges, one matcher group per event."""
    hooks: Json = {}
    for event in EVENTS:
        group: Json = {} if event in NO_MATCHER else {"matcher": "*"}
        group["hooks"] = [_handler(command)]
        hooks[event] = [group]
    return {"hooks": hooks}


def _handler(command: str) -> Json:
    return {"type": "command", "command": command, "timeout": TIMEOUT_S}


def is_ours(handler: object) -> bool:
    if not isinstance(handler, dict):
        return False
    command = handler.get("command")
    return isinstance(command, str) and HOOK_SCRIPT in command


def _install(settings: Path, args: argparse.Namespace) -> int:
    target, text, data = _load(settings)
    _copy_script(_script_path(args.project))
    hooks = data.setdefault("hooks", {})
    command = _command(args)
    for event in EVENTS:
        _ensure(hooks, event, command)
    changed = _write_if_changed(target, text, data)
    verb = "installed" if changed else "already installed, nothing changed"
    print(f"agentwatch: hook {verb} for {len(EVENTS)} events in {target}")
    return 0


def _uninstall(settings: Path) -> int:
    target, text, data = _load(settings)
    if text is None:
        print(f"agentwatch: {target} does not exist; nothing to remove")
        return 0
    hooks = data.get("hooks")
    removed = 0
    if isinstance(hooks, dict):
        for event in list(hooks):
            groups = hooks[event]
            if isinstance(groups, list):
                removed += _remove_ours(groups)
                if not groups:
                    del hooks[event]
        if not hooks:
            del data["hooks"]
    _write_if_changed(target, text, data)
    print(f"agentwatch: removed {removed} agentwatch handler(s) from {target}")
    return 0


def _load(settings: Path) -> tuple[Path, str | None, Json]:
    """Returns the real file (symlinks followed, so a linked dotfile stays linked), its text, and the data."""
    target = Path(os.path.realpath(settings))
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        return target, None, {}
    where = f"{target} "
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{where}is not UTF-8 text (byte {exc.start}); fix or move it, then run again") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"{where}is not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); "
            "fix or move it, then run again"
        ) from None
    if not isinstance(data, dict):
        raise SettingsError(
            f"{where}holds a JSON {_kind(data)} at the top level, expected an object; fix or move it, then run again"
        )
    hooks = data.get("hooks", {})
    if not isinstance(hooks, dict):
        raise SettingsError(f'{where}has "hooks" as a JSON {_kind(hooks)}, expected an object; fix it, then run again')
    for event in EVENTS:
        if event in hooks and not isinstance(hooks[event], list):
            raise SettingsError(
                f'{where}has "hooks.{event}" as a JSON {_kind(hooks[event])}, expected a list; fix it, then run again'
            )
    return target, text, data


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else type(value).__name__


def _ensure(hooks: Json, event: str, command: str) -> None:
    """Leaves exactly one of our handlers for ``event``, in a match-all group, equal to the wanted one."""
    groups: list[Any] = hooks.setdefault(event, [])
    ours = [
        (group, handler)
        for group in groups
        if isinstance(group, dict) and isinstance(group.get("hooks"), list)
        for handler in group["hooks"]
        if is_ours(handler)
    ]
    if len(ours) == 1:
        group, handler = ours[0]
        if event in NO_MATCHER or group.get("matcher") in MATCH_ALL:
            handler.clear()
            handler.update(_handler(command))
            return
    _remove_ours(groups)
    new: Json = {} if event in NO_MATCHER else {"matcher": "*"}
    new["hooks"] = [_handler(command)]
    groups.append(new)


def _remove_ours(groups: list[Any]) -> int:
    """Drops our handlers, and the groups this leaves empty, from an event's list; returns how many."""
    removed = 0
    for group in list(groups):
        if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
            continue
        kept = [h for h in group["hooks"] if not is_ours(h)]
        if len(kept) == len(group["hooks"]):
            continue
        removed += len(group["hooks"]) - len(kept)
        if kept:
            group["hooks"] = kept
        else:
            groups.remove(group)
    return removed


def _write_if_changed(target: Path, old: str | None, data: Json) -> bool:
    new = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if old is not None and (new == old or json.loads(old) == data):
        return False
    if old is not None:
        backup = _backup(target)
        print(f"agentwatch: previous settings saved as {backup}")
    _atomic_write(target, new.encode("utf-8"), mode=None)
    return True


def _backup(target: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = target.with_name(f"{target.name}.agentwatch-backup-{stamp}")
    n = 1
    while backup.exists():
        backup = target.with_name(f"{target.name}.agentwatch-backup-{stamp}-{n}")
        n += 1
    shutil.copy2(target, backup)
    return backup


def _copy_script(dest: Path) -> None:
    source = resources.files("hooks") / HOOK_SCRIPT
    body = source.read_bytes()
    try:
        if dest.read_bytes() == body and os.access(dest, os.X_OK):
            return
    except FileNotFoundError:
        pass
    _atomic_write(dest, body, mode=0o755)


def _atomic_write(target: Path, body: bytes, mode: int | None) -> None:
    """Temp file in the same directory, fsync, rename over ``target``; keeps the old file's mode."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
