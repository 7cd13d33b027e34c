"""Follow the transcript files Claude Code writes, and read each agent's token usage as it is written.

The payloads name the files: `transcript_path` is the session's own (the orchestrator's), SubagentStop's
`agent_transcript_path` a sub-agent's; before that, a sub-agent's file is looked for where each version puts
it (`<session>/subagents/agent-<id>.jsonl` from 2.1.2, `agent-<id>.jsonl` beside the session file before).
Up to 2.0.27 sub-agent turns are inline in the session file (`isSidechain`): they count for the session's
subtree, not for the orchestrator itself.

Each file is read from a saved offset, at most once a second, up to its last complete line; the offsets are
saved with the events file's checkpoint in the commit that publishes what was read, so a restart neither
loses nor counts twice. A file that cannot be read (another machine's path, no permission) is left alone:
its agent keeps the Agent tool's figure, marked as a floor.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from contract import MAIN_AGENT, compact_json

from .usage import Ledger, Line, parse_line

FIELD = "tx:"  # checkpoint field of one followed file
READ_CAP = 4 << 20  # bytes read from one file per pass: a 50 MB session file catches up in seconds, in steps
RESCAN = 1 << 20  # at a restart, the last bytes before each offset are read again to know what was counted
READ_EVERY_MS = 1000  # a file is read at most this often: usage changes reach viewers at most once a second
GRACE_MS = 30_000  # an ended agent's file is still read this long: its last lines land after SubagentStop
LOOK_EVERY_MS = 5_000  # a running sub-agent whose file was not found yet is looked for this often
SIDECHAIN = "\x00side"  # owner suffix of sub-agent lines inline in a session file


@dataclass
class Followed:
    path: str
    session: str
    agent_id: str  # whose usage it is
    target: str | None = None  # once that agent ended: the agent (alive field) whose sub_usage takes the rest
    dev: int = 0
    ino: int = 0
    off: int = 0
    skip: bool = False  # inside a line longer than READ_CAP: drop bytes up to its end
    until: int | None = None  # ms: followed until then (the grace after its agent ended)
    next_read: int = 0

    def saved(self) -> str:
        return compact_json(
            [self.session, self.agent_id, self.target, self.dev, self.ino, self.off, self.skip, self.until]
        )


class Transcripts:
    """The followed files, their offsets, and the ledger of what was counted from them."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.files: dict[str, Followed] = {}  # by path
        self.sessions: dict[str, str] = {}  # session -> its own transcript's path
        self.looked: dict[str, int] = {}  # alive field -> when its file was last looked for
        self.dirty: set[str] = set()
        self.dropped: set[str] = set()
        # Indexes: every pass asks, for each alive agent, whether its file is followed (a session can have
        # a thousand sub-agent files).
        self._by_agent: dict[tuple[str, str], set[str]] = {}
        self._by_target: dict[str, set[str]] = {}

    def _add(self, followed: Followed) -> None:
        self.files[followed.path] = followed
        self._by_agent.setdefault((followed.session, followed.agent_id), set()).add(followed.path)
        if followed.target is not None:
            self._by_target.setdefault(followed.target, set()).add(followed.path)

    # ---- which files
    def follow(self, path: Any, session: str, agent_id: str) -> None:
        """Follow a file a payload names (once: a path names one agent's file for good)."""
        if not isinstance(path, str) or not path.endswith(".jsonl") or path in self.files or "\x00" in path:
            return
        if agent_id == MAIN_AGENT:
            if session in self.sessions:
                return
            self.sessions[session] = path
        self._add(Followed(path, session, agent_id))
        self.dirty.add(path)
        self.dropped.discard(path)

    def has_own(self, session: str, agent_id: str) -> bool:
        return any(self.files[p].target is None for p in self._by_agent.get((session, agent_id), ()))

    def candidates(self, session: str, agent_id: str) -> list[str]:
        """Where Claude Code writes a sub-agent's file, newest layout first."""
        main = self.sessions.get(session)
        if main is None:
            return []
        folder, stem = os.path.split(main[: -len(".jsonl")])
        name = f"agent-{agent_id}.jsonl"
        return [os.path.join(folder, stem, "subagents", name), os.path.join(folder, name)]

    def look_for(self, session: str, agent_id: str, key: str, now_ms: int) -> bool:
        """Follow a sub-agent's file if it exists where its version writes it; looked for every few seconds."""
        if now_ms - self.looked.get(key, -LOOK_EVERY_MS) < LOOK_EVERY_MS:
            return False
        self.looked[key] = now_ms
        for path in self.candidates(session, agent_id):
            if os.path.isfile(path):
                self.follow(path, session, agent_id)
                return True
        return False

    def of(self, session: str, agent_id: str) -> list[Followed]:
        return [self.files[p] for p in sorted(self._by_agent.get((session, agent_id), ()))]

    def targeting(self, key: str) -> list[Followed]:
        return [self.files[p] for p in sorted(self._by_target.get(key, ()))]

    def ended(self, followed: Followed, target: str | None, now_ms: int) -> None:
        """Its agent ended: what is still written goes to `target`'s sub_usage for the grace period."""
        if followed.target is not None:
            self._by_target.get(followed.target, set()).discard(followed.path)
        followed.target, followed.until = target, now_ms + GRACE_MS
        if target is not None:
            self._by_target.setdefault(target, set()).add(followed.path)
        self.dirty.add(followed.path)

    def drop_session(self, session: str) -> None:
        for path in [p for p, f in self.files.items() if f.session == session]:
            self.drop(path)
        self.sessions.pop(session, None)
        prefix = session + "/"
        for key in [k for k in self.looked if k.startswith(prefix)]:
            del self.looked[key]

    def drop(self, path: str) -> None:
        followed = self.files.pop(path, None)
        if followed is None:
            return
        self.dropped.add(path)
        self.dirty.discard(path)
        owned = self._by_agent.get((followed.session, followed.agent_id))
        if owned is not None:
            owned.discard(path)
            if not owned:
                del self._by_agent[(followed.session, followed.agent_id)]
        if followed.target is not None:
            targeted = self._by_target.get(followed.target)
            if targeted is not None:
                targeted.discard(path)
                if not targeted:
                    del self._by_target[followed.target]

    # ---- reading
    def due(self, now_ms: int) -> list[Followed]:
        """Files to read now; those past their grace are dropped."""
        for path in [p for p, f in self.files.items() if f.until is not None and f.until < now_ms]:
            self.drop(path)
        return [f for f in self.files.values() if f.next_read <= now_ms]

    def read(self, followed: Followed, now_ms: int) -> Iterator[tuple[str, Line]]:
        """(owner, line) for each usage line written since the last read: owner is the file's path, or its
        path + SIDECHAIN for a sub-agent's line inline in a session file."""
        followed.next_read = now_ms + READ_EVERY_MS
        chunk = self._chunk(followed)
        if not chunk:
            return
        self.dirty.add(followed.path)
        yield from _usage_lines(followed, chunk)

    def _chunk(self, followed: Followed) -> bytes:
        """The complete lines past the offset (at most READ_CAP bytes), moving the offset past them."""
        opened = _open_regular(followed.path)
        if opened is None:
            return b""  # not (yet) there, not ours to read, or not a file: the agent keeps its floor
        fd, st = opened
        try:
            if (st.st_dev, st.st_ino) != (followed.dev, followed.ino) or st.st_size < followed.off:
                # A new file at this path, or one cut short: read it from the start (the ledger has what was
                # counted, so nothing is counted twice).
                followed.dev, followed.ino, followed.off, followed.skip = st.st_dev, st.st_ino, 0, False
                self.dirty.add(followed.path)
            if st.st_size == followed.off:
                return b""
            data = os.pread(fd, min(READ_CAP, st.st_size - followed.off), followed.off)
        except OSError:
            return b""
        finally:
            os.close(fd)
        end = data.rfind(b"\n") + 1
        if end == 0:
            if len(data) == READ_CAP:  # one line longer than we read at once: not usage, skip to its end
                followed.off += len(data)
                followed.skip = True
                self.dirty.add(followed.path)
            return b""
        start = 0
        if followed.skip:
            start = data.find(b"\n") + 1
            followed.skip = False
        followed.off += end
        return data[start:end]

    # ---- saved with the checkpoint
    def state(self) -> tuple[dict[str, str], list[str]]:
        sets = {_field(p): self.files[p].saved() for p in self.dirty if p in self.files}
        dels = [_field(p) for p in self.dropped]
        self.dirty, self.dropped = set(), set()
        return sets, dels

    def full_state(self) -> dict[str, str]:
        self.dirty, self.dropped = set(), set()
        return {_field(p): f.saved() for p, f in self.files.items()}

    def restore(self, checkpoint: Mapping[str, str], foreign: bool) -> None:
        """The files followed at the checkpoint; the end of each is read again (counting nothing) so that a
        response half-counted before the restart is completed, not counted again."""
        self.files, self.sessions, self.looked = {}, {}, {}
        self._by_agent, self._by_target = {}, {}
        self.dirty, self.dropped = set(), set()
        self.ledger.counted.clear()
        for name, value in checkpoint.items():
            if not name.startswith(FIELD):
                continue
            path = ""
            with contextlib.suppress(ValueError, TypeError):
                path = json.loads('"' + name[len(FIELD) :] + '"')
                session, agent_id, target, dev, ino, off, skip, until = json.loads(value)
                if not foreign:
                    self._add(
                        Followed(
                            path, str(session), str(agent_id), target, int(dev), int(ino), int(off), bool(skip), until
                        )
                    )
                    if agent_id == MAIN_AGENT:
                        self.sessions[str(session)] = path
                    continue
            if path:
                self.dropped.add(path)  # a foreign or unreadable entry: deleted with the next commit
        for followed in self.files.values():
            self._recount(followed)

    def _recount(self, followed: Followed) -> None:
        opened = _open_regular(followed.path)
        if opened is None:
            return
        fd, st = opened
        try:
            if (st.st_dev, st.st_ino) != (followed.dev, followed.ino):
                return
            start = max(0, followed.off - RESCAN)
            data = os.pread(fd, followed.off - start, start)
        except OSError:
            return
        finally:
            os.close(fd)
        if start:
            data = data[data.find(b"\n") + 1 :]
        for owner, line in _usage_lines(followed, data):
            self.ledger.count(owner, followed.session, line)


def _open_regular(path: str) -> tuple[int, os.stat_result] | None:
    """A read descriptor on a regular file, and its stat. O_NONBLOCK: a FIFO named in a payload must not hang
    us; anything but a regular file is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


def _usage_lines(followed: Followed, data: bytes) -> Iterator[tuple[str, Line]]:
    """(owner, line) for each usage line of `data`: owner is the file's path, or its path + SIDECHAIN for a
    sub-agent's line inline in a session file."""
    side = followed.path + SIDECHAIN
    for raw in data.split(b"\n"):
        line = parse_line(raw)
        if line is not None:
            yield (side if line.sidechain and followed.agent_id == MAIN_AGENT else followed.path), line


def _field(path: str) -> str:
    return FIELD + compact_json(path)[1:-1]
