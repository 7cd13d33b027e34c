"""Share links: one session, read-only, for a while. A real relay, ingest and redis-server; the real CLI."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from relay.share import ShareRefused, sign, verify
from tests.stack import PYTHON, ROOT, RedisServer, Stack, running_stack, wait_for
from tests.viewer import next_message

SECRET = "relay-secret-4f9a"
A, B = "sess-a", "sess-b"

reliability = pytest.mark.reliability


@pytest.fixture
def stack(redis_server: RedisServer, events_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("AGENTWATCH_TOKEN", SECRET)  # the relay subprocess inherits it
    with running_stack(redis_server.url, events_file) as s:
        yield s


def calls(session: str, start: int, n: int = 1) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [
        {
            "session_id": session,
            "cwd": f"/home/dev/{session}-project",
            "hook_event_name": "PreToolUse",
            "tool_name": "Read",
            "tool_use_id": f"{session}-tu-{i}",
            "_received_at": now,
        }
        for i in range(start, start + n)
    ]


def append(path: Path, lines: list[dict[str, Any]]) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(json.dumps(line).encode() + b"\n" for line in lines))


def interleaved(start: int, n: int) -> list[dict[str, Any]]:
    """Calls of both sessions, B's in runs of one to three between A's, so a share viewer skips some."""
    lines: list[dict[str, Any]] = []
    for i in range(start, start + n):
        lines += calls(B, 10 * i, 1 + i % 3) + calls(A, i)
    return lines


def share_link(session: str, ttl: str = "1h", secret: str = SECRET) -> str:
    """The token out of the URL `agentwatch share` prints."""
    result = subprocess.run(
        [PYTHON, "-m", "agentwatch", "share", "--session", session, "--ttl", ttl],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "AGENTWATCH_TOKEN": secret},
    )
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith("http://127.0.0.1:8201/?share=") and "\n" not in url
    return url.split("?share=", 1)[1]


async def recv(ws: Any, within: float = 10.0) -> dict[str, Any]:
    return await next_message(ws, within)


class SeqCheck:
    """What the page's model accepts: events exactly one after the last seq; in a filtered view a ping moves it."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.seq = snapshot["seq"]
        self.epoch = snapshot["epoch"]
        self.events: list[dict[str, Any]] = []
        self.pings = 0

    def apply(self, message: dict[str, Any]) -> None:
        assert message["epoch"] == self.epoch
        if message["type"] == "ping":
            assert message["seq"] >= self.seq
            self.seq = message["seq"]
            self.pings += 1
            return
        assert message["type"] == "event" and message["seq"] == self.seq + 1, (self.seq, message)
        self.seq = message["seq"]
        self.events.append(message["data"])


async def follow_until(ws: Any, check: SeqCheck, done: Any, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while True:
        message = await recv(ws, max(0.1, deadline - time.monotonic()))
        check.apply(message)
        if message["type"] == "event" and done(message["data"]):
            return


def last_call(session: str, i: int) -> Any:
    return lambda d: d.get("tool_use_id") == f"{session}-tu-{i}"


def both_running(stack: Stack, server: RedisServer) -> None:
    append(stack.events_file, calls(A, 0) + calls(B, 0))
    wait_for(lambda: server.cli("HLEN", f"{stack.prefix}:alive").strip() == "2", what="both sessions in Redis")


def sessions_alive(snapshot: dict[str, Any]) -> set[str]:
    return {r["session_id"] for r in snapshot["alive"]}


@reliability(
    "Security",
    "share link: one session only",
    injected="a link from `agentwatch share` for session A while A and B both run, B's calls between A's",
    checked="snapshot, live events and resume (since/epoch) carry A only, each flagged filtered, "
    "seqs gap-free with pings over the skipped ones; a full-token viewer sees both",
)
async def test_share_viewer_gets_only_its_session(stack: Stack, redis_server: RedisServer) -> None:
    both_running(stack, redis_server)
    token = share_link(A)
    async with websockets.connect(f"{stack.ws_url}?token={SECRET}") as full:
        everything = await recv(full)
        assert sessions_alive(everything) == {A, B}
        async with websockets.connect(f"{stack.ws_url}?share={token}") as ws:
            snapshot = await recv(ws)
            assert snapshot["type"] == "snapshot" and snapshot["filtered"] is True
            assert snapshot["share"]["session"] == A and snapshot["share"]["expires"] > time.time() + 3500
            assert sessions_alive(snapshot) == {A} and snapshot["alive"][0]["project"] == f"{A}-project"
            check = SeqCheck(snapshot)
            append(stack.events_file, interleaved(1, 20))
            await follow_until(ws, check, last_call(A, 20))
        assert {d["session_id"] for d in check.events} == {A}
        assert [d["tool_use_id"] for d in check.events] == [f"{A}-tu-{i}" for i in range(1, 21)]
        assert check.pings >= 19  # one before each A call that follows B's
        everyone = SeqCheck(everything)
        await follow_until(full, everyone, last_call(A, 20))
        assert {d["session_id"] for d in everyone.events} == {A, B}

    # Resume from the middle: the replay is filtered the same way.
    middle = check.seq - 30
    async with websockets.connect(f"{stack.ws_url}?share={token}&since={middle}&epoch={check.epoch}") as ws:
        replay = SeqCheck({"seq": middle, "epoch": check.epoch})
        await follow_until(ws, replay, last_call(A, 20))
    assert replay.events and {d["session_id"] for d in replay.events} == {A}


@reliability(
    "Security",
    "share link: resets stay filtered",
    injected="a share viewer resuming from another epoch, and a FLUSHALL under a running share viewer",
    checked="each reset snapshot holds session A only (filtered, share echoed); later events A only",
)
async def test_share_viewer_resets_are_filtered(
    own_redis: RedisServer, events_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTWATCH_TOKEN", SECRET)
    token = sign(SECRET, A, int(time.time()) + 600)
    with running_stack(own_redis.url, events_file) as stack:
        both_running(stack, own_redis)
        async with websockets.connect(f"{stack.ws_url}?share={token}&since=3&epoch=not-this-one") as ws:
            snapshot = await recv(ws)
            assert snapshot["reset"] is True and snapshot["filtered"] is True and snapshot["share"]["session"] == A
            assert sessions_alive(snapshot) == {A}
        async with websockets.connect(f"{stack.ws_url}?share={token}") as ws:
            check = SeqCheck(await recv(ws))
            own_redis.cli("FLUSHALL")
            append(stack.events_file, calls(B, 1) + calls(A, 1))
            while True:  # until the reset, then A's call after it
                message = await recv(ws)
                if message["type"] == "snapshot":
                    assert message["reset"] is True and message["filtered"] is True
                    assert sessions_alive(message) <= {A}
                    check = SeqCheck(message)
                    break
                check.apply(message)
            append(stack.events_file, calls(B, 2) + calls(A, 2))
            await follow_until(ws, check, last_call(A, 2))
        assert {d["session_id"] for d in check.events} == {A}
        assert B in own_redis.cli("HKEYS", f"{stack.prefix}:alive")  # B runs, it is just not shown


@reliability(
    "Security",
    "share link: forged, foreign or expired",
    injected="a token whose payload names another session, one signed with another key, an expired one, "
    "an unsigned one, and a share link on a relay without AGENTWATCH_TOKEN",
    checked="HTTP 401 before accept (expired: close 4401 'share link expired' before any data); each logged",
)
async def test_bad_share_tokens_are_refused(stack: Stack, redis_server: RedisServer) -> None:
    good = sign(SECRET, A, int(time.time()) + 600)
    forged = sign(SECRET, B, int(time.time()) + 600).split(".")[0] + "." + good.split(".")[1]
    for token in (forged, sign("another-secret", A, int(time.time()) + 600), good.split(".")[0], "x" * 2000, ""):
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(f"{stack.ws_url}?share={token}"):
                pass
        assert refused.value.response.status_code == 401
        assert b"snapshot" not in (refused.value.response.body or b"")
    expired = sign(SECRET, A, int(time.time()) - 1)
    async with websockets.connect(f"{stack.ws_url}?share={expired}") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert closed.value.rcvd.reason == "share link expired"
    stack.relay.wait_line("refused a share link (share link expired)")
    for reason in ("signature does not match", "malformed share token"):
        stack.relay.wait_line(reason)
    # No share link and no token: the full view still needs the token.
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(stack.ws_url):
            pass
    assert refused.value.response.status_code == 403


@reliability(
    "Security",
    "share link: cannot be widened",
    injected="a share link for A plus ?token= (wrong) and ?session=B, and a resume from seq 0 of the full stream",
    checked="still A only: no other parameter changes the scope",
)
async def test_share_link_cannot_be_widened(stack: Stack, redis_server: RedisServer) -> None:
    both_running(stack, redis_server)
    token = sign(SECRET, A, int(time.time()) + 600)
    async with websockets.connect(f"{stack.ws_url}?share={token}&token=wrong&session={B}") as ws:
        snapshot = await recv(ws)
        assert sessions_alive(snapshot) == {A} and snapshot["filtered"] is True
    async with websockets.connect(f"{stack.ws_url}?share={token}&since=0&epoch={snapshot['epoch']}") as ws:
        replay = SeqCheck({"seq": 0, "epoch": snapshot["epoch"]})
        await follow_until(ws, replay, last_call(A, 0))
    assert {d["session_id"] for d in replay.events} == {A} and len(replay.events) == 2  # session_start, the call


@reliability(
    "Security",
    "share link: expiry while watching",
    injected="a share viewer connected with a link valid for 2 s, events still coming",
    checked="closed at expiry with 4401 'share link expired'; reconnecting is refused the same way",
)
async def test_open_share_viewer_is_closed_at_expiry(stack: Stack) -> None:
    expires = int(time.time()) + 2
    token = sign(SECRET, A, expires)
    async with websockets.connect(f"{stack.ws_url}?share={token}") as ws:
        check = SeqCheck(await recv(ws))
        append(stack.events_file, calls(A, 0))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                check.apply(await recv(ws))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert closed.value.rcvd.reason == "share link expired"
    assert expires <= time.time() < expires + 3
    async with websockets.connect(f"{stack.ws_url}?share={token}") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_share_link_on_a_relay_without_a_token_is_refused(redis_server: RedisServer, events_file: Path) -> None:
    """No AGENTWATCH_TOKEN, no key to check a link with: 401, not an open view."""
    with running_stack(redis_server.url, events_file) as stack:
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(f"{stack.ws_url}?share={sign(SECRET, A, int(time.time()) + 60)}"):
                pass
        assert refused.value.response.status_code == 401
        stack.relay.wait_line("share links need AGENTWATCH_TOKEN")


# ---- the token and the command line


def test_token_round_trip_and_refusals() -> None:
    token = sign(SECRET, A, 2_000_000_000)
    assert verify(SECRET, token, now=1_999_999_999).session == A
    with pytest.raises(ShareRefused) as late:
        verify(SECRET, token, now=2_000_000_000)
    assert late.value.expired and str(late.value) == "share link expired"
    head, mac = token.split(".")
    for bad in (f"{head}.{mac[:-2]}AA", f"{head[:-2]}x.{mac}", f"{head}={mac}", f"{head}.{mac}.x", head):
        with pytest.raises(ShareRefused) as refused:
            verify(SECRET, bad, now=0)
        assert not refused.value.expired
    with pytest.raises(ShareRefused):
        verify(None, token, now=0)


@pytest.mark.parametrize(
    ("ttl", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604800), (None, 3600)]
)
def test_cli_prints_one_url_with_the_ttl(ttl: str | None, seconds: int) -> None:
    from agentwatch.share import share_url

    argv = ["--session", A] + (["--ttl", ttl] if ttl else [])
    url, expires = share_url(argv, env={"AGENTWATCH_TOKEN": SECRET}, now=1_000_000)
    assert expires == 1_000_000 + seconds
    assert verify(SECRET, url.split("?share=")[1], now=1_000_000).session == A
    url, _ = share_url([*argv, "--url", "https://watch.example/"], env={"AGENTWATCH_TOKEN": SECRET})
    assert url.startswith("https://watch.example/?share=")
    env = {"AGENTWATCH_TOKEN": SECRET, "AGENTWATCH_PUBLIC_URL": "http://box:9000"}
    assert share_url(argv, env=env)[0].startswith("http://box:9000/?share=")


@reliability(
    "Bad input",
    "agentwatch share: bad flags",
    injected="--ttl 0, 1.5h, -5m, 2y, 400d; a --url without scheme; no AGENTWATCH_TOKEN; no --session",
    checked="one line naming the flag (or AGENTWATCH_TOKEN), exit 2, nothing on stdout",
)
@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--ttl", "0"], {"AGENTWATCH_TOKEN": SECRET}, "--ttl"),
        (["--ttl", "1.5h"], {"AGENTWATCH_TOKEN": SECRET}, "--ttl"),
        (["--ttl", "-5m"], {"AGENTWATCH_TOKEN": SECRET}, "--ttl"),
        (["--ttl", "2y"], {"AGENTWATCH_TOKEN": SECRET}, "--ttl"),
        (["--ttl", "400d"], {"AGENTWATCH_TOKEN": SECRET}, "--ttl"),
        (["--url", "watch.example"], {"AGENTWATCH_TOKEN": SECRET}, "--url"),
        ([], {}, "AGENTWATCH_TOKEN"),
    ],
)
def test_cli_refuses_bad_values_in_one_line(args: list[str], env: dict[str, str], named: str) -> None:
    result = subprocess.run(
        [PYTHON, "-m", "agentwatch", "share", "--session", A, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and named in result.stderr


def test_cli_needs_a_session() -> None:
    result = subprocess.run([PYTHON, "-m", "agentwatch", "share"], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert result.returncode == 2 and "--session" in result.stderr and len(result.stderr.strip().splitlines()) == 1
