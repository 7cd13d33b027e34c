"""Whole lines from a growing file that may be rotated, truncated or recreated. No Redis here.

A file is identified by (dev, ino) plus a fingerprint of its first line, because inodes get reused.
The position handed out is always the end of the last complete line: a partial last line waits for its
newline and is re-read, never buffered past a restart. See ../shared/reference/tailing.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import watchfiles

log = logging.getLogger("ingest.tail")

FINGERPRINT_BYTES = 1024
IDLE_AFTER_POLLS = 3  # quiet safety polls in a row before the watcher slows down
IDLE_STEP_MS = 50  # the watcher's step while idle: the first line after a pause waits up to ~2 steps


@dataclass(frozen=True)
class Position:
    """Where the next unread line starts, in which file."""

    dev: int
    ino: int
    fp: str  # sha256 of the first line (up to FINGERPRINT_BYTES); "" while the file has no complete line
    off: int

    @property
    def token(self) -> str:
        """Compared-and-set by the commit script: the same file and offset as the last commit."""
        return f"{self.dev}:{self.ino}:{self.off}"


@dataclass
class Batch:
    before: Position | None  # the position this batch starts from (None: nothing committed from this file yet)
    after: Position
    lines: list[tuple[int, bytes]] = field(default_factory=list)  # (byte offset, line without newline)
    rejects: list[tuple[int, str, bytes]] = field(default_factory=list)  # (offset, reason, excerpt)
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.lines and not self.rejects and self.before == self.after


class Tail:
    def __init__(
        self, path: Path, max_line_bytes: int = 1 << 20, max_lines: int = 2000, rotate_wait_s: float = 1.0
    ) -> None:
        self.path = path
        self.rotate_wait_s = rotate_wait_s
        self._quiet_since: float | None = None  # when the rotated-away file we are on was last seen quiet
        self.max_line_bytes = max_line_bytes
        self.max_lines = max_lines
        self.read_size = max(1 << 20, max_line_bytes + 1)
        self._fd: int | None = None
        self._pos: Position | None = None
        self._skip_partial = False  # skip to the next newline without counting it (live start mid-line)
        self._pending: dict[str, int] = {}  # counters to report with the next batch

    # ---- lifecycle
    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Tail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def position(self) -> Position | None:
        return self._pos

    def start(self, saved: Position | None, start_at: str) -> str:
        """Open the file where the checkpoint says, or per start_at ("start"/"end") without one."""
        self.close()
        self._pos = None
        self._skip_partial = False
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if saved is not None:
            if st is not None and (st.st_dev, st.st_ino) == (saved.dev, saved.ino):
                self._open(self.path, saved)
                if st.st_size >= saved.off and self._fingerprint_ok(saved):
                    return f"resuming {self.path} at byte {saved.off}"
                self._reset("rewritten")
                return f"{self.path} was truncated or rewritten since the checkpoint: reading it from the start"
            sibling = self._rotated_sibling(saved)
            if sibling is not None:
                self._open(sibling, saved)
                self._pending["rotations"] = self._pending.get("rotations", 0) + 1
                return f"draining rotated {sibling} from byte {saved.off}, then {self.path} from the start"
            if st is not None:
                self._open(self.path, None)
                return f"{self.path} is a new file since the checkpoint: reading it from the start"
            return f"waiting for {self.path} to appear"
        if st is None:
            return f"waiting for {self.path} to appear"
        self._open(self.path, None)
        if start_at == "end" and st.st_size > 0:
            self._pos = Position(st.st_dev, st.st_ino, self._first_line_fp(), st.st_size)
            self._skip_partial = self._byte_at(st.st_size - 1) != b"\n"
            return f"following {self.path} from its end (byte {st.st_size}); --from start reads its history"
        return f"reading {self.path} from the start"

    # ---- reading
    def read_batch(self) -> Batch | None:
        """The next run of complete lines; None when nothing is open and the file does not exist."""
        if self._fd is None and not self._try_open_path():
            return None
        assert self._pos is not None and self._fd is not None
        before = self._pos
        self._check_identity()
        batch = self._read_lines(before)
        if not batch.empty or not self._rotated():
            self._quiet_since = None
        elif self._rotation_settled():
            # Drained the old file to its end and it stayed quiet: move on (to a file rotated away unread
            # first, then to the new one at the path).
            old = os.fstat(self._fd)
            self.close()
            self._pending["rotations"] = self._pending.get("rotations", 0) + 1
            if self._open_skipped(old) or self._try_open_path():
                batch = self._read_lines(before)
        batch.counters, self._pending = self._pending, {}
        return batch

    def _rotation_settled(self) -> bool:
        """A writer that opened the old file just before the rename still appends to it: wait until it has
        been quiet for rotate_wait_s before leaving it (the new file's lines wait that long, once per rotation)."""
        assert self._fd is not None
        old = os.fstat(self._fd)
        now = time.monotonic()
        if self._quiet_since is None:
            self._quiet_since = now
        if now - self._quiet_since >= self.rotate_wait_s:
            return True
        # Unless the old file is no longer <name>.1: the next file was rotated too, so late writers are long
        # gone and waiting longer would only risk the file after it.
        try:
            st = os.stat(self.path.with_name(self.path.name + ".1"))
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != (old.st_dev, old.st_ino)

    def _open_skipped(self, old: os.stat_result) -> bool:
        """The hook keeps one old file: if the file at the path was rotated to <name>.1 before we ever opened
        it (ingest lagged a whole file behind), it is there, written after the old file. Read it first."""
        rotated = self.path.with_name(self.path.name + ".1")
        try:
            st = os.stat(rotated)
        except OSError:
            return False
        # Written after the old file's last line: the next file, not an older one (a rename over the old file
        # moves its ctime, never its mtime).
        if (st.st_dev, st.st_ino) == (old.st_dev, old.st_ino) or st.st_mtime_ns <= old.st_mtime_ns:
            return False
        try:
            self._open(rotated, None)
        except OSError:
            return False
        log.warning("%s was rotated away before ingest read it: reading it before the new file", rotated)
        return True

    def _read_lines(self, before: Position) -> Batch:
        assert self._pos is not None and self._fd is not None
        pos = self._pos
        off = pos.off
        batch = Batch(before=before, after=pos)
        if self._skip_partial:
            nl = self._find_newline(off)
            if nl is None:
                return batch
            off = nl + 1
            self._skip_partial = False
        chunk = os.pread(self._fd, self.read_size, off)
        start = 0
        while len(batch.lines) + len(batch.rejects) < self.max_lines:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                break
            line = chunk[start:nl]
            if len(line) > self.max_line_bytes:
                batch.rejects.append((off + start, "too_long", line[:120]))
            else:
                batch.lines.append((off + start, line))
            start = nl + 1
        if start == 0 and len(chunk) > self.max_line_bytes:
            # One line longer than we accept: skip it to its newline (or to what exists of it so far).
            nl = self._find_newline(off + len(chunk))
            batch.rejects.append((off, "too_long", chunk[:120]))
            if nl is None:
                end = os.fstat(self._fd).st_size
                self._skip_partial = True
                start = end - off
            else:
                start = nl + 1 - off
        new_off = off + start
        fp = pos.fp or (self._first_line_fp() if new_off > 0 else "")
        self._pos = Position(pos.dev, pos.ino, fp, new_off)
        batch.after = self._pos
        return batch

    def _check_identity(self) -> None:
        """Truncated or rewritten in place: start over from byte 0 of the same file."""
        assert self._fd is not None and self._pos is not None
        size = os.fstat(self._fd).st_size
        if size < self._pos.off:
            self._reset("truncations")
        elif self._pos.fp and self._pos.off > 0 and self._first_line_fp() != self._pos.fp:
            self._reset("truncations")

    def _reset(self, counter: str) -> None:
        assert self._pos is not None
        log.warning("%s was truncated or rewritten: reading it again from the start", self.path)
        self._pending[counter] = self._pending.get(counter, 0) + 1
        self._pos = Position(self._pos.dev, self._pos.ino, "", 0)
        self._skip_partial = False

    def _rotated(self) -> bool:
        assert self._pos is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != (self._pos.dev, self._pos.ino)

    # ---- files
    def _open(self, path: Path, at: Position | None) -> None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        st = os.fstat(fd)
        self._fd = fd
        self._pos = at if at is not None else Position(st.st_dev, st.st_ino, "", 0)

    def _try_open_path(self) -> bool:
        try:
            self._open(self.path, None)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        except PermissionError:
            log.error("cannot read %s: permission denied; fix its mode, ingest retries every poll", self.path)
            return False
        return True

    def _rotated_sibling(self, saved: Position) -> Path | None:
        """After a rename rotation while we were stopped, the old file lives on as a sibling (events.jsonl.1)."""
        with contextlib.suppress(OSError), os.scandir(self.path.parent) as entries:
            for entry in entries:
                if not entry.name.startswith(self.path.name) or entry.name == self.path.name:
                    continue
                st = entry.stat(follow_symlinks=False)
                if (st.st_dev, st.st_ino) == (saved.dev, saved.ino) and st.st_size >= saved.off:
                    path = Path(entry.path)
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        if _fingerprint(fd) == saved.fp or not saved.fp:
                            return path
                    finally:
                        os.close(fd)
        return None

    def _fingerprint_ok(self, saved: Position) -> bool:
        return not saved.fp or self._first_line_fp() == saved.fp

    def _first_line_fp(self) -> str:
        assert self._fd is not None
        return _fingerprint(self._fd)

    def _byte_at(self, off: int) -> bytes:
        assert self._fd is not None
        return os.pread(self._fd, 1, off)

    def _find_newline(self, off: int) -> int | None:
        assert self._fd is not None
        while True:
            chunk = os.pread(self._fd, 1 << 20, off)
            if not chunk:
                return None
            nl = chunk.find(b"\n")
            if nl >= 0:
                return off + nl
            off += len(chunk)


def _fingerprint(fd: int) -> str:
    head = os.pread(fd, FINGERPRINT_BYTES, 0)
    nl = head.find(b"\n")
    if nl < 0 and len(head) < FINGERPRINT_BYTES:
        return ""
    return hashlib.sha256(head[: nl + 1] if nl >= 0 else head).hexdigest()[:32]


async def wakeups(
    path: Path, stop: asyncio.Event, poll_interval: float = 1.0, step_ms: int = 5, debounce_ms: int = 100
) -> AsyncIterator[None]:
    """Yield whenever the file may have changed: on a change in its directory, and at least every poll_interval.

    The directory is watched, not the file (a watch on the file dies at the first rename). Notifications
    are hints: the timeout yields are the safety poll that covers lost ones (queue overflow, NFS, 9p).
    """
    name = path.name
    step = step_ms
    yield None
    while not stop.is_set():
        directory = path.parent
        try:
            dir_id = directory.stat().st_ino
        except OSError:
            await _sleep_or_stop(stop, poll_interval)  # directory missing: poll until it comes back
            yield None
            continue
        quiet = 0
        try:
            async for changes in watchfiles.awatch(
                directory,
                watch_filter=lambda _change, p: os.path.basename(p).startswith(name),
                recursive=False,
                step=step,
                debounce=debounce_ms,
                rust_timeout=int(poll_interval * 1000),
                yield_on_timeout=True,
                stop_event=stop,
            ):
                yield None
                if not _same_dir(directory, dir_id):
                    break  # the directory was removed or replaced: its watch is dead, build a new one
                # A short step costs CPU even when nothing happens (the watcher wakes every step): after a few
                # quiet polls switch to a long one, and back at the first change.
                quiet = 0 if changes else quiet + 1
                if changes and step != step_ms:
                    step = step_ms
                    break
                if quiet >= IDLE_AFTER_POLLS and step == step_ms < IDLE_STEP_MS:
                    step = IDLE_STEP_MS
                    break
        except (OSError, RuntimeError) as exc:
            log.warning(
                "watching %s failed (%s); polling every %.1fs until it works again", directory, exc, poll_interval
            )
            await _sleep_or_stop(stop, poll_interval)
            yield None


def _same_dir(directory: Path, dir_id: int) -> bool:
    try:
        return directory.stat().st_ino == dir_id
    except OSError:
        return False


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
