"""The tailer on real files: whole lines only, truncation, rotation, recreation, over-long lines."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from ingest.tail import Position, Tail, wakeups


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def drain(tail: Tail) -> tuple[list[bytes], list[str]]:
    lines: list[bytes] = []
    rejects: list[str] = []
    while True:
        batch = tail.read_batch()
        if batch is None or batch.empty:
            return lines, rejects
        lines += [line for _, line in batch.lines]
        rejects += [reason for _, reason, _ in batch.rejects]


def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    append(path, b'{"a":1}\n{"b":')
    with Tail(path) as tail:
        tail.start(None, "start")
        assert drain(tail)[0] == [b'{"a":1}']
        assert tail.position is not None and tail.position.off == 8  # the end of the last complete line
        assert drain(tail)[0] == []
        append(path, b"2}\n")
        assert drain(tail)[0] == [b'{"b":2}']


def test_start_at_end_skips_history_and_a_partial_last_line(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    append(path, b'{"old":1}\n{"half":')
    with Tail(path) as tail:
        tail.start(None, "end")
        append(path, b'1}\n{"new":1}\n')
        assert drain(tail)[0] == [b'{"new":1}']


def test_resume_from_a_saved_position(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    append(path, b"1\n2\n")
    with Tail(path) as tail:
        tail.start(None, "start")
        drain(tail)
        saved = tail.position
    append(path, b"3\n")
    with Tail(path) as tail:
        tail.start(saved, "end")
        assert drain(tail)[0] == [b"3"]


def test_truncation_while_running_reads_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    append(path, b"first-line\nsecond\n")
    with Tail(path) as tail:
        tail.start(None, "start")
        drain(tail)
        os.truncate(path, 0)
        append(path, b"x\n")
        batch = tail.read_batch()
        assert batch is not None and [line for _, line in batch.lines] == [b"x"]
        assert batch.counters == {"truncations": 1}


def test_rewritten_file_while_stopped_is_not_resumed_at_a_stale_offset(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    append(path, b"aaaa\nbbbb\n")
    with Tail(path) as tail:
        tail.start(None, "start")
        drain(tail)
        saved = tail.position
    # Same inode, regrown past the old offset with other content: the fingerprint tells.
    with open(path, "wb") as f:
        f.write(b"cccc\ndddd\neeee\n")
    with Tail(path) as tail:
        tail.start(saved, "end")
        assert drain(tail)[0] == [b"cccc", b"dddd", b"eeee"]


def test_rename_rotation_while_running_drains_the_old_file_first(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    append(path, b"1\n")
    with Tail(path, rotate_wait_s=0) as tail:
        tail.start(None, "start")
        assert drain(tail)[0] == [b"1"]
        append(path, b"2\n")
        os.rename(path, tmp_path / "e.jsonl.1")
        append(path, b"3\n")
        lines, _ = drain(tail)
        assert lines == [b"2", b"3"]


def test_a_writer_late_into_the_rotated_file_is_read_before_the_new_file(tmp_path: Path) -> None:
    """A hook that opened the file just before the rename writes into the old file after it (tailing.md:
    rotate_wait): ingest stays on the old file until it has been quiet for rotate_wait_s."""
    path = tmp_path / "e.jsonl"
    append(path, b"1\n")
    late = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        with Tail(path, rotate_wait_s=0.3) as tail:
            tail.start(None, "start")
            assert drain(tail)[0] == [b"1"]
            os.rename(path, tmp_path / "e.jsonl.1")
            append(path, b"new\n")
            assert drain(tail)[0] == []  # waiting: the old file may still get a line
            os.write(late, b"late\n")
            assert drain(tail)[0] == [b"late"]
            time.sleep(0.35)
            assert drain(tail)[0] == [b"new"]
    finally:
        os.close(late)


def test_a_file_rotated_away_before_it_was_opened_is_read_before_the_new_one(tmp_path: Path) -> None:
    """Ingest lagged a whole file: A was rotated, then B (never opened) was rotated over A's name."""
    path = tmp_path / "e.jsonl"
    append(path, b"a1\n")
    with Tail(path, rotate_wait_s=0) as tail:
        tail.start(None, "start")
        assert drain(tail)[0] == [b"a1"]
        os.rename(path, tmp_path / "e.jsonl.1")
        time.sleep(0.01)  # B's lines are written after A's rename, as the hook does
        append(path, b"b1\nb2\n")
        os.rename(path, tmp_path / "e.jsonl.1")
        append(path, b"c1\n")
        assert drain(tail)[0] == [b"b1", b"b2", b"c1"]
        assert drain(tail)[0] == []


def test_rotation_while_stopped_drains_the_sibling_then_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    append(path, b"1\n")
    with Tail(path) as tail:
        tail.start(None, "start")
        drain(tail)
        saved = tail.position
    append(path, b"2\n")
    os.rename(path, tmp_path / "e.jsonl.1")
    append(path, b"3\n")
    with Tail(path, rotate_wait_s=0) as tail:
        assert "draining rotated" in tail.start(saved, "end")
        assert drain(tail)[0] == [b"2", b"3"]


def test_delete_and_recreate_reads_the_new_file_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    append(path, b"old-1\nold-2\n")
    with Tail(path) as tail:
        tail.start(None, "start")
        drain(tail)
        path.unlink()
        append(path, b"new\n")
        assert drain(tail)[0] == [b"new"]


def test_over_long_line_is_rejected_and_its_neighbours_kept(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    append(path, b"before\n" + b"x" * 5000 + b"\nafter\n")
    with Tail(path, max_line_bytes=1024) as tail:
        tail.start(None, "start")
        lines, rejects = drain(tail)
    assert lines == [b"before", b"after"]
    assert rejects == ["too_long"]


def test_over_long_line_still_being_written_is_skipped_to_its_end(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    append(path, b"y" * (3 << 20))
    with Tail(path, max_line_bytes=1 << 20) as tail:
        tail.start(None, "start")
        assert drain(tail) == ([], ["too_long"])
        append(path, b"y" * 1000 + b"\nnext\n")
        assert drain(tail) == ([b"next"], [])


def test_missing_file_then_created(tmp_path: Path) -> None:
    path = tmp_path / "later" / "e.jsonl"
    with Tail(path) as tail:
        assert "waiting" in tail.start(None, "end")
        assert tail.read_batch() is None
        path.parent.mkdir()
        append(path, b"1\n")
        assert drain(tail)[0] == [b"1"]


def test_position_token_names_file_and_offset() -> None:
    assert Position(1, 2, "fp", 30).token == "1:2:30"


async def test_wakeups_follow_a_directory_that_is_removed_and_recreated(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    path = folder / "e.jsonl"
    stop = asyncio.Event()
    woke = asyncio.Event()

    async def watch() -> None:
        async for _ in wakeups(path, stop, poll_interval=0.2):
            woke.set()

    task = asyncio.create_task(watch())
    await asyncio.wait_for(woke.wait(), 5)
    folder.rmdir()
    folder.mkdir()
    woke.clear()
    append(path, b"1\n")
    await asyncio.wait_for(woke.wait(), 5)  # a new watcher (or the poll) notices the new directory's file
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_wakeups_still_come_after_the_watcher_slows_down_when_idle(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"")
    stop = asyncio.Event()
    wakes: list[int] = []
    woke = asyncio.Event()

    async def watch() -> None:
        async for _ in wakeups(path, stop, poll_interval=0.1, step_ms=2):
            wakes.append(1)
            woke.set()

    task = asyncio.create_task(watch())
    while len(wakes) < 6:  # quiet safety polls: past IDLE_AFTER_POLLS the watcher takes its long step
        woke.clear()
        await asyncio.wait_for(woke.wait(), 5)
    for _ in range(3):  # a change wakes it (and brings back the short step), again and again
        woke.clear()
        append(path, b"1\n")
        await asyncio.wait_for(woke.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)
