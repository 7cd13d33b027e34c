"""Redis Sentinel: --redis-url redis+sentinel://... finds the master through the sentinels and follows a failover.

The failover test runs a real master, replica and three sentinels (tests/sentinel_rig.py), a real ingest and
relay, and two WebSocket viewers, and kills the master mid-stream (../shared/reference/team-scale.md §2, §4).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from contract import Keys, redis_url_problem, safe_url
from contract.connect import BlockingSentinelConnectionPool, SentinelRedis, parse_sentinel_url, redis_client
from tests.sentinel_rig import sentinel_rig
from tests.stack import assert_bad_redis_url, running_stack, wait_for
from tests.test_faults import _converge, append_json
from tests.test_ingest import seq
from tests.test_rollback import calls, logged_tool_ids
from tests.viewer import ViewerModel, follow

reliability = pytest.mark.reliability


# ---- the URL


@pytest.mark.parametrize(
    ("url", "sentinels", "service", "master", "sentinel"),
    [
        ("redis+sentinel://127.0.0.1:26380/m", [("127.0.0.1", 26380)], "m", {}, {}),
        (
            "redis+sentinel://a,b:26381,[::1]:26382/my-master/3",
            [("a", 26379), ("b", 26381), ("::1", 26382)],
            "my-master",
            {"db": 3},
            {},
        ),
        (
            "redis+sentinel://aw:pa%3Ass@h1:1,h2:2/m",
            [("h1", 1), ("h2", 2)],
            "m",
            {"username": "aw", "password": "pa:ss"},
            {"username": "aw", "password": "pa:ss"},  # the same login to the sentinels by default
        ),
        (
            "redis+sentinel://:pw@h/m?sentinel_password=other&socket_timeout=2.5",
            [("h", 26379)],
            "m",
            {"password": "pw", "socket_timeout": 2.5},
            {"password": "other", "socket_timeout": 2.5},
        ),
        (
            "redis+sentinel://u:pw@h/m?sentinel_password=",  # sentinels without a password
            [("h", 26379)],
            "m",
            {"username": "u", "password": "pw"},
            {},
        ),
        (
            "rediss+sentinel://:pw@h:5/m/1?ssl_ca_certs=/ca.pem&ssl_check_hostname=false",
            [("h", 5)],
            "m",
            {"password": "pw", "db": 1, "ssl_ca_certs": "/ca.pem", "ssl_check_hostname": False},
            {"password": "pw", "ssl_ca_certs": "/ca.pem", "ssl_check_hostname": False, "ssl": True},
        ),
    ],
)
def test_sentinel_urls_parse(
    url: str, sentinels: list[tuple[str, int]], service: str, master: dict[str, Any], sentinel: dict[str, Any]
) -> None:
    parsed = parse_sentinel_url(url)
    assert redis_url_problem(url) is None
    assert (list(parsed.sentinels), parsed.service, parsed.master, parsed.sentinel) == (
        sentinels,
        service,
        master,
        sentinel,
    )
    assert parsed.tls == url.startswith("rediss+")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis+sentinel://127.0.0.1:26379", "expected the service name after the sentinels, e.g. redis+sentinel://"),
        ("redis+sentinel://127.0.0.1:26379/", "expected the service name"),
        ("redis+sentinel:///m", "expected at least one sentinel host:port"),
        ("redis+sentinel://:pw@/m", "expected at least one sentinel host:port"),
        ("redis+sentinel://h:x/m", "sentinel 'h:x': expected a port from 1 to 65535"),
        ("redis+sentinel://h:70000/m", "sentinel 'h:70000': expected a port from 1 to 65535"),
        ("redis+sentinel://h:1,/m", "sentinel '': expected host:port"),
        ("redis+sentinel://h/m/zero", "expected /<service>[/<db number>] after the sentinels, got '/m/zero'"),
        ("redis+sentinel://h/m?bogus=1", "unknown option 'bogus'"),
        ("redis+sentinel://h/m?socket_timeout=soon", "option 'socket_timeout' has value 'soon': expected a number"),
        ("redis+sentinel://h/m?ssl_ca_certs=/ca", "option 'ssl_ca_certs' is for TLS: expected rediss+sentinel://"),
        ("sentinel://h/m", "expected redis://host:port/db, rediss:// (TLS), unix:///path or redis+sentinel://"),
    ],
)
def test_bad_sentinel_urls_say_what_was_expected(url: str, expected: str) -> None:
    problem = redis_url_problem(url)
    assert problem is not None and expected in problem, problem


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis+sentinel://aw:s3cret@h1:1,h2:2/m/0", "redis+sentinel://aw:***@h1:1,h2:2/m/0"),
        ("rediss+sentinel://:s3cret@h/m", "rediss+sentinel://:***@h/m"),
        (
            "redis+sentinel://:s3cret@h/m?sentinel_password=s3cret&socket_timeout=1",
            "redis+sentinel://:***@h/m?sentinel_password=***&socket_timeout=1",
        ),
        ("redis+sentinel://h/m?sentinel_password=s3cret", "redis+sentinel://h/m?sentinel_password=***"),
        ("unix:///run/redis.sock?db=1&password=s3cret", "unix:///run/redis.sock?db=1&password=***"),
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis+sentinel://h1:1,h2:2/m", "redis+sentinel://h1:1,h2:2/m"),
    ],
)
def test_safe_url_masks_every_password(url: str, shown: str) -> None:
    assert safe_url(url) == shown and "s3cret" not in safe_url(url)


async def test_clients_keep_their_pools() -> None:
    """A Sentinel client gets the relay's bounded blocking pool; plain URLs get the pools they had before."""
    url = "redis+sentinel://:pw@127.0.0.1:1,127.0.0.1:2/m/2?sentinel_password=sp"
    relay = redis_client(url, max_connections=32, wait_s=20, socket_connect_timeout=5)
    ingest = redis_client(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=15)
    plain = redis_client("redis://127.0.0.1:1/0", max_connections=32, wait_s=20, socket_connect_timeout=5)
    try:
        assert isinstance(relay, SentinelRedis)
        pool = relay.connection_pool
        assert isinstance(pool, BlockingSentinelConnectionPool)
        assert (pool.max_connections, pool.timeout, pool.service_name) == (32, 20, "m")
        assert pool.connection_kwargs["password"] == "pw" and pool.connection_kwargs["db"] == 2
        sentinels = pool.sentinel_manager.sentinels
        assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [1, 2]
        kwargs = sentinels[0].connection_pool.connection_kwargs
        assert (kwargs["password"], kwargs["socket_connect_timeout"]) == ("sp", 5)
        assert not isinstance(ingest.connection_pool, BlockingConnectionPool)
        assert ingest.connection_pool.connection_kwargs["health_check_interval"] == 15
        assert type(plain) is Redis and isinstance(plain.connection_pool, BlockingConnectionPool)
        assert (plain.connection_pool.max_connections, plain.connection_pool.timeout) == (32, 20)
    finally:
        for client in (relay, ingest, plain):
            await client.aclose()


@reliability(
    "Bad input",
    "configuration: bad Sentinel URL",
    injected="redis+sentinel:// without a service name, with a bad port, with no sentinel",
    checked="one line naming --redis-url and what was expected, exit 2, for ingest and relay",
)
@pytest.mark.parametrize(
    ("command", "url", "expected"),
    [
        ("ingest", "redis+sentinel://127.0.0.1:26379", "expected the service name"),
        ("ingest", "redis+sentinel://127.0.0.1:port/m", "expected a port from 1 to 65535"),
        ("relay", "redis+sentinel://:s3cret@/m", "expected at least one sentinel host:port"),
    ],
)
def test_bad_sentinel_url_is_one_line_and_exit_2(command: str, url: str, expected: str) -> None:
    assert_bad_redis_url(command, url, expected)


# ---- a real failover


def _stream(path: Path, first: int, stop: asyncio.Event, written: list[str]) -> asyncio.Task[None]:
    """Append a new agent with three calls every 40 ms until stop; every third one ends at once."""

    async def write() -> None:
        k = first
        while not stop.is_set():
            lines = calls("s1", f"b{k}", 10 * k, 3)
            if k % 3 == 0:
                lines.append({"session_id": "s1", "hook_event_name": "SubagentStop", "agent_id": f"b{k}"})
            append_json(path, lines)
            written.extend(f"tu-{10 * k + j}" for j in range(3))
            k += 1
            await asyncio.sleep(0.04)

    return asyncio.create_task(write())


def _stats(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + "/stats", timeout=5) as r:
        return dict(json.load(r))


def _ready_status(base: str) -> int:
    try:
        with urllib.request.urlopen(base + "/ready", timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@reliability(
    "Faults",
    "Sentinel failover",
    injected="kill -9 of the master (3 sentinels, quorum 2, down-after 1 s) while agents and calls stream in, "
    "its replica cut off just before so acknowledged commits are lost",
    checked="ingest and relay find the promoted replica through the sentinels by themselves; every call in the new "
    "master's log exactly once (the lost ones republished from the surviving checkpoint); /ready recovers; "
    "viewers reset once and converge on HGETALL alive, no hole, no duplicate",
)
async def test_sentinel_failover_mid_stream(prefix: str, events_file: Path) -> None:
    stop, writing = asyncio.Event(), asyncio.Event()
    models = [ViewerModel() for _ in range(2)]
    written: list[str] = [f"tu-{i}" for i in range(20)]
    meta = Keys(prefix).meta
    with sentinel_rig() as rig, running_stack(rig.url, events_file, prefix) as stack:
        master, replica = rig.master, rig.replica
        viewers = [asyncio.create_task(follow(stack.ws_url, m, stop)) for m in models]
        # Before: an agent with 20 calls, on the first master.
        append_json(events_file, calls("s1", "a1", 0, 20))
        for m in models:
            await _converge(m, master, prefix)
        epoch = models[0].epoch
        statuses: list[int] = []

        async def poll_ready() -> None:
            while not stop.is_set():
                statuses.append(await asyncio.to_thread(_ready_status, stack.base_url))
                await asyncio.sleep(0.1)

        poller = asyncio.create_task(poll_ready())
        # During: a steady stream; the replica is cut off (stopped so it cannot resync), commits go on on the
        # master alone, then the master is killed mid-stream and the replica resumes.
        writer = _stream(events_file, 100, writing, written)
        await asyncio.sleep(0.5)
        replica.signal(signal.SIGSTOP)
        try:
            master.cli("CLIENT", "KILL", "TYPE", "replica")
            cut = seq(master, prefix)
            await asyncio.to_thread(wait_for, lambda: seq(master, prefix) >= cut + 10, 10, 0.01, "unreplicated commits")
            acknowledged = seq(master, prefix)
            master.signal(signal.SIGKILL)
            killed_at = time.monotonic()
        finally:
            replica.signal(signal.SIGCONT)
        assert master.proc is not None
        master.proc.wait(10)
        await asyncio.to_thread(
            wait_for, lambda: "master_link_status:down" in replica.cli("INFO", "replication"), 10, 0.02, "link down"
        )
        kept = seq(replica, prefix)  # what survives of the old master's seqs
        await asyncio.to_thread(wait_for, lambda: rig.master_port() == replica.port, 30, 0.02, "the promotion")
        promoted_s = time.monotonic() - killed_at
        await asyncio.to_thread(
            wait_for, lambda: replica.cli("HGET", meta, "epoch").strip() not in ("", epoch), 30, 0.02, "a commit"
        )
        first_commit_s = time.monotonic() - killed_at
        await asyncio.to_thread(wait_for, lambda: all(m.epoch != epoch for m in models), 30, 0.02, "viewer reset")
        viewers_reset_s = time.monotonic() - killed_at
        await asyncio.sleep(0.5)
        writing.set()
        await writer
        # After: another agent on the new master.
        append_json(events_file, calls("s1", "a2", 50000, 20))
        written += [f"tu-{i}" for i in range(50000, 50020)]
        await asyncio.to_thread(
            wait_for, lambda: set(logged_tool_ids(replica, prefix)) >= set(written), 30, 0.05, "every call logged"
        )
        for m in models:
            await _converge(m, replica, prefix)
        converged_s = time.monotonic() - killed_at
        stop.set()
        await asyncio.gather(*viewers, poller)
        ids = logged_tool_ids(replica, prefix)
        relay_stats = await asyncio.to_thread(_stats, stack.base_url)
        running = stack.ingest.proc.poll() is None and stack.relay.proc.poll() is None
        ingest_log = stack.ingest.output
    print(
        f"sentinel failover: {acknowledged - kept} acknowledged events lost and republished; after kill -9 the "
        f"replica was promoted at {promoted_s:.2f} s, first commit on it {first_commit_s:.2f} s, "
        f"viewers reset {viewers_reset_s:.2f} s, "
        f"converged {converged_s:.2f} s (after the last writes)"
    )
    assert running
    assert kept < acknowledged  # Redis really lost acknowledged writes
    assert Counter(ids) == Counter(written)  # every call exactly once, counting across epochs
    assert "Redis unreachable" in ingest_log, ingest_log  # it waited the failover out by itself
    assert relay_stats["reconnects"] >= 1 and relay_stats["resets"] >= 1
    assert 503 in statuses and statuses[-1] == 200
    for m in models:
        assert m.holes == [] and m.duplicates == 0 and m.resets >= 1
        assert {"s1/main", "s1/a1", "s1/a2"} <= m.keys
