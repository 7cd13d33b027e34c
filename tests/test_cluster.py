"""Redis Cluster: --redis-url redis+cluster://... runs everything on a Cluster, every name of a prefix in one slot.

The names carry the prefix as a hash tag there (`{agentwatch}:alive`), the commit script publishes with SPUBLISH
in that slot and the relay subscribes with SSUBSCRIBE (../shared/reference/team-scale.md §3). The real tests
run six redis-servers (three masters, three replicas, tests/cluster_rig.py), a real ingest, two relays named by
different nodes and two WebSocket viewers, and kill the master of the prefix's slot mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException

from contract import Keys, connect, prefix_problem, redis_url_problem, safe_url
from contract.connect import ClusterRedis, ClusterTooOld, parse_cluster_url, redis_client, too_old_for_sharded_pubsub
from ingest.commit import COMMIT_LUA, Committer, for_keys
from ingest.lease import REAP_LUA
from relay.hub import Hub
from tests.cluster_rig import ClusterRig, cluster_rig
from tests.stack import (
    Proc,
    RedisServer,
    assert_bad_redis_url,
    play_fixture,
    start_ingest,
    start_relay,
    wait_for,
)
from tests.test_faults import append_json
from tests.test_rollback import calls
from tests.test_sentinel import _ready_status, _stats, _stream
from tests.viewer import ViewerModel, follow

reliability = pytest.mark.reliability


# ---- the names


def test_cluster_names_are_the_prefix_as_a_hash_tag() -> None:
    keys = Keys("agentwatch", cluster=True)
    assert (keys.alive, keys.meta, keys.log, keys.channel, keys.stats, keys.leases, keys.sources) == (
        "{agentwatch}:alive",
        "{agentwatch}:meta",
        "{agentwatch}:log",
        "{agentwatch}:events",
        "{agentwatch}:stats",
        "{agentwatch}:leases",
        "{agentwatch}:sources",
    )
    assert keys.checkpoint("vm:events.jsonl-1f") == "{agentwatch}:ingest:vm:events.jsonl-1f"
    # A single Redis and Sentinel keep the documented names.
    assert (Keys("agentwatch").alive, Keys("agentwatch").channel) == ("agentwatch:alive", "agentwatch:events")


@pytest.mark.parametrize("prefix", ["agentwatch", "team-a", "a", "x.y:z_1", "A" * 64])
def test_every_name_of_a_prefix_maps_to_one_slot(prefix: str) -> None:
    keys = Keys(prefix, cluster=True)
    names = [keys.meta, keys.alive, keys.log, keys.channel, keys.stats, keys.leases, keys.sources]
    names += [keys.checkpoint(source) for source in ("s", "host:path-0123abcd", "{not}:a{tag}")]
    assert {key_slot(name.encode()) for name in names} == {key_slot(prefix.encode())}
    assert all(name.startswith("{" + prefix + "}:") for name in names)


def test_prefixes_cannot_hold_braces() -> None:
    """The prefix itself becomes the tag: braces in it would move the hashed part."""
    for prefix in ("{agentwatch}", "a{b}", "team}", "{"):
        assert prefix_problem(prefix) is not None, prefix
    assert prefix_problem("team-a.b:c") is None


@pytest.mark.parametrize(
    ("url", "cluster"),
    [
        ("redis+cluster://127.0.0.1:7000", True),
        ("rediss+cluster://h:7000,h:7001", True),
        ("redis://127.0.0.1:6379/0", False),
        ("redis+sentinel://127.0.0.1:26379/m", False),
        (None, False),
    ],
)
def test_keys_know_from_the_url_whether_they_are_on_a_cluster(url: str | None, cluster: bool) -> None:
    assert Keys.for_url("p", url) == Keys("p", cluster=cluster)


def test_scripts_publish_in_the_shard_on_a_cluster() -> None:
    for script in (COMMIT_LUA, REAP_LUA):
        assert script.count("redis.call('PUBLISH',") == 1
        sharded = for_keys(script, Keys("p", cluster=True))
        assert "redis.call('SPUBLISH', KEYS[4]" in sharded and "'PUBLISH'" not in sharded
        assert for_keys(script, Keys("p")) == script


# ---- the URL


@pytest.mark.parametrize(
    ("url", "nodes", "tls", "options"),
    [
        ("redis+cluster://127.0.0.1:7000", [("127.0.0.1", 7000)], False, {}),
        ("redis+cluster://a,b:7001,[::1]:7002/0", [("a", 6379), ("b", 7001), ("::1", 7002)], False, {}),
        (
            "redis+cluster://aw:pa%3Ass@h1:1,h2:2?socket_timeout=2.5",
            [("h1", 1), ("h2", 2)],
            False,
            {"username": "aw", "password": "pa:ss", "socket_timeout": 2.5},
        ),
        (
            "rediss+cluster://:pw@h:5?ssl_ca_certs=/ca.pem&ssl_check_hostname=false",
            [("h", 5)],
            True,
            {"password": "pw", "ssl_ca_certs": "/ca.pem", "ssl_check_hostname": False},
        ),
    ],
)
def test_cluster_urls_parse(url: str, nodes: list[tuple[str, int]], tls: bool, options: dict[str, Any]) -> None:
    parsed = parse_cluster_url(url)
    assert redis_url_problem(url) is None
    assert (list(parsed.nodes), parsed.tls, parsed.options) == (nodes, tls, options)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis+cluster://", "expected at least one cluster node host:port, e.g. redis+cluster://"),
        ("redis+cluster://:pw@", "expected at least one cluster node host:port"),
        ("redis+cluster://h:x", "node 'h:x': expected a port from 1 to 65535"),
        ("redis+cluster://h:1,", "node '': expected host:port"),
        ("redis+cluster://h:1/2", "expected no path or /0 after the nodes (a Redis Cluster has only db 0)"),
        ("redis+cluster://h?bogus=1", "unknown option 'bogus'"),
        ("redis+cluster://h?db=1", "unknown option 'db'"),
        ("redis+cluster://h?socket_timeout=soon", "option 'socket_timeout' has value 'soon': expected a number"),
        ("redis+cluster://h?ssl_ca_certs=/ca", "option 'ssl_ca_certs' is for TLS: expected rediss+cluster://"),
        ("cluster://h:1", "or redis+cluster://host:port[,host:port...]"),
    ],
)
def test_bad_cluster_urls_say_what_was_expected(url: str, expected: str) -> None:
    problem = redis_url_problem(url)
    assert problem is not None and expected in problem, problem


def test_safe_url_masks_cluster_passwords() -> None:
    assert safe_url("redis+cluster://aw:s3cret@h1:1,h2:2") == "redis+cluster://aw:***@h1:1,h2:2"
    assert safe_url("rediss+cluster://:s3cret@h:1?socket_timeout=1") == "rediss+cluster://:***@h:1?socket_timeout=1"


async def test_cluster_clients_wait_for_a_connection_like_the_relays_pool() -> None:
    relay = redis_client("redis+cluster://:pw@127.0.0.1:1,127.0.0.1:2", max_connections=32, wait_s=20)
    ingest = redis_client("rediss+cluster://127.0.0.1:1", socket_timeout=10, socket_connect_timeout=5)
    try:
        assert isinstance(relay, ClusterRedis) and isinstance(ingest, ClusterRedis)
        assert [(n.host, n.port) for n in relay.startup_nodes] == [("127.0.0.1", 1), ("127.0.0.1", 2)]
        assert relay.connection_kwargs["password"] == "pw" and relay.connection_kwargs["max_connections"] == 40
        assert relay._gate is not None and ingest._gate is None
        assert (
            ingest.connection_kwargs["socket_timeout"] == 10
            and "SSL" in ingest.connection_kwargs["connection_class"].__name__
        )
        # Nothing listens there: an outage, as on a single Redis (every caller retries ConnectionError).
        with pytest.raises(RedisConnectionError, match="Redis Cluster cannot be connected"):
            await relay.ping()
    finally:
        for client in (relay, ingest):
            await client.aclose()


def test_a_cluster_without_sharded_pubsub_is_refused() -> None:
    """SPUBLISH and SSUBSCRIBE came with Redis 7.0: an older cluster is refused at start-up, in one line."""
    assert [too_old_for_sharded_pubsub(v) for v in ("6.2.14", "5.0.7", "7.0.0", "7.0.15", "8.2.1", "x")] == [
        True,
        True,
        False,
        False,
        False,
        False,
    ]


@reliability(
    "Bad input",
    "configuration: bad Cluster URL",
    injected="redis+cluster:// without a node, with a db other than 0, with a bad port",
    checked="one line naming --redis-url and what was expected, exit 2, for ingest and relay; no password shown",
)
@pytest.mark.parametrize(
    ("command", "url", "expected"),
    [
        ("ingest", "redis+cluster://:s3cret@", "expected at least one cluster node host:port"),
        ("relay", "redis+cluster://127.0.0.1:7000/3", "a Redis Cluster has only db 0"),
        ("relay", "redis+cluster://127.0.0.1:port", "expected a port from 1 to 65535"),
    ],
)
def test_bad_cluster_url_is_one_line_and_exit_2(command: str, url: str, expected: str) -> None:
    assert_bad_redis_url(command, url, expected)


# ---- on a real cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterRig]:
    """Six nodes for the tests that leave the cluster as they found it."""
    with cluster_rig() as rig:
        yield rig


async def test_scripts_and_sharded_pubsub_run_on_a_real_cluster(cluster: ClusterRig, prefix: str) -> None:
    """What ingest commits (EVALSHA routed by slot, SPUBLISH inside it) is what a relay reads and receives."""
    keys = Keys(prefix, cluster=True)
    writer = redis_client(cluster.url(cluster.servers[0]))
    reader = redis_client(cluster.url(cluster.servers[-1]))
    listener = reader.pubsub(ignore_subscribe_messages=True)
    try:
        await reader.hmget(keys.meta, ["seq"])  # loads the slot map the shard subscription is routed by
        await listener.ssubscribe(keys.channel)  # type: ignore[attr-defined]
        committer = Committer(writer, keys, "src", stream_cap=100)
        event = {"type": "session_start", "ts": 1, "session_id": "s", "agent_id": "main"}
        record = {"session_id": "s", "agent_id": "main"}
        done = await committer.commit(
            "", "e1", {"pos": "1:2:3"}, [json.dumps(event)], {"s/main": json.dumps(record)}, [], {}
        )
        assert (done.seq, done.epoch) == (1, "e1")
        message = None
        for _ in range(20):
            message = await listener.get_sharded_message(timeout=0.2)  # type: ignore[attr-defined]
            if message is not None:
                break
        assert message is not None and message["type"] == "smessage"
        assert json.loads(message["data"]) == {"type": "event", "seq": 1, "epoch": "e1", "data": event}
        hub = Hub(reader, keys)
        assert (await hub.snapshot()).alive == [record]
        assert [seq for seq, _ in await hub.resume(0, "e1", 100) or []] == [1]
        owner = cluster.master_of(keys.meta)
        assert owner.cli("PUBSUB", "SHARDNUMSUB", keys.channel).split()[-1] == "1"  # in the prefix's own shard
        # Keys of two slots in one script are a bug, refused as such (never retried as if Redis were down).
        with pytest.raises(RedisClusterException, match="same key slot"):
            await writer.eval("return 1", 2, keys.meta, Keys(prefix + "x", cluster=True).meta)
    finally:
        await listener.aclose()  # type: ignore[no-untyped-call]
        for client in (writer, reader):
            await client.aclose()


async def test_a_cluster_too_old_for_sharded_pubsub_reads_as_unreachable(
    cluster: ClusterRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Said where an unreachable Redis is said (ingest: one line at start-up; relay: /ready), every time."""
    monkeypatch.setattr(connect, "too_old_for_sharded_pubsub", lambda version: version == "7.0.15")
    client = redis_client(cluster.url(cluster.servers[0]))
    try:
        for _ in range(2):
            with pytest.raises(ClusterTooOld, match="Redis 7.0.15 has no sharded pub/sub") as refused:
                await client.hmget(Keys("p", cluster=True).meta, ["seq"])
            assert isinstance(refused.value, RedisConnectionError)
    finally:
        await client.aclose()


def _logged(rig: ClusterRig, keys: Keys) -> list[dict[str, Any]]:
    out = rig.cli("--raw", "XRANGE", keys.log, "-", "+")
    return [json.loads(line)["data"] for line in out.splitlines() if line.startswith("{")]


def _ids(rig: ClusterRig, keys: Keys) -> list[str]:
    return [d["tool_use_id"] for d in _logged(rig, keys) if d["type"] == "tool_use"]


def _seq(server: RedisServer | ClusterRig, keys: Keys) -> int:
    return int(server.cli("HGET", keys.meta, "seq").strip() or 0)


def _replica_seq(replica: RedisServer, keys: Keys) -> int:
    """A replica's own copy (READONLY: it answers instead of redirecting to its master)."""
    script = f"READONLY\nHGET {keys.meta} seq\n"
    out = subprocess.run(["redis-cli", "-p", str(replica.port)], input=script, capture_output=True, text=True)
    return int(out.stdout.split()[-1])


async def _converge(model: ViewerModel, rig: ClusterRig, keys: Keys, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if model.seq == _seq(rig, keys) and model.keys == set(rig.cli("HKEYS", keys.alive).split()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"viewer at seq {model.seq} with {sorted(model.keys)}; Redis at {_seq(rig, keys)}")


@reliability(
    "Team scale",
    "Redis Cluster failover",
    injected="3 masters + 3 replicas (cluster-node-timeout 2 s); the fixture session, then a stream of agents and "
    "calls through one ingest and two relays named by different nodes; the master of the prefix's slot killed "
    "(-9) mid-stream, its replica cut off just before so acknowledged commits are lost; more lines after",
    checked="every name in one slot, events through sharded pub/sub in that shard; both viewers see every event in "
    "order and converge on HGETALL of {prefix}:alive; after the promotion ingest and both relays go on by "
    "themselves: every call in the log exactly once counting across epochs, viewers reset once and converge, "
    "no hole, no duplicate",
)
async def test_cluster_failover_mid_stream(prefix: str, events_file: Path) -> None:
    keys = Keys(prefix, cluster=True)
    stop, writing = asyncio.Event(), asyncio.Event()
    models = [ViewerModel() for _ in range(2)]
    procs: list[Proc] = []
    with cluster_rig() as rig:
        doomed = rig.master_of(keys.meta)
        replica = rig.replica_of(doomed)
        other = next(s for s in rig.servers if s not in (doomed, replica))
        try:
            events_file.parent.mkdir(parents=True, exist_ok=True)
            ingest = start_ingest(rig.url(), events_file, prefix, "--from", "start")
            procs.append(ingest)
            # Relay A knows only the master about to die, relay B only a node of another shard.
            bases = []
            for node in (doomed, other):
                relay, base = start_relay(rig.url(node), prefix)
                procs.append(relay)
                bases.append(base)
            viewers = [
                asyncio.create_task(follow(base.replace("http://", "ws://") + "/stream", m, stop))
                for m, base in zip(models, bases, strict=True)
            ]
            await asyncio.to_thread(wait_for, lambda: all(m.connected.is_set() for m in models), 10, 0.02, "viewers")
            assert doomed.cli("PUBSUB", "SHARDNUMSUB", keys.channel).split()[-1] == "2"  # both relays, sharded
            assert doomed.cli("PUBSUB", "NUMSUB", keys.channel).split()[-1] == "0"

            # Before: the fixture session through the real hook, on the first master.
            await asyncio.to_thread(play_fixture, events_file)
            for m in models:
                await _converge(m, rig, keys)
                assert m.events == _logged(rig, keys) and m.holes == [] and m.duplicates == 0  # every one, in order
            before = _ids(rig, keys)
            assert before and len(before) == len(set(before))
            epoch = models[0].epoch
            statuses: list[int] = []

            async def poll_ready() -> None:
                while not stop.is_set():
                    statuses.append(await asyncio.to_thread(_ready_status, bases[0]))
                    await asyncio.sleep(0.1)

            poller = asyncio.create_task(poll_ready())
            # During: a steady stream; the replica is cut off (stopped, so it cannot resync), commits go on on the
            # master alone, then the master is killed and the replica resumes and is promoted.
            written: list[str] = []
            writer = _stream(events_file, 100, writing, written)
            await asyncio.sleep(0.5)
            replica.signal(signal.SIGSTOP)
            try:
                doomed.cli("CLIENT", "KILL", "TYPE", "replica")
                cut = _seq(doomed, keys)
                await asyncio.to_thread(
                    wait_for, lambda: _seq(doomed, keys) >= cut + 10, 10, 0.01, "unreplicated commits"
                )
                acknowledged = _seq(doomed, keys)
                doomed.signal(signal.SIGKILL)
                killed_at = time.monotonic()
            finally:
                replica.signal(signal.SIGCONT)
            assert doomed.proc is not None
            doomed.proc.wait(10)
            kept = _replica_seq(replica, keys)  # what survives of the old master's seqs
            await asyncio.to_thread(
                wait_for, lambda: "role:master" in replica.cli("INFO", "replication"), 30, 0.02, "the promotion"
            )
            promoted_s = time.monotonic() - killed_at
            await asyncio.to_thread(
                wait_for, lambda: replica.cli("HGET", keys.meta, "epoch").strip() not in ("", epoch), 30, 0.02, "commit"
            )
            first_commit_s = time.monotonic() - killed_at
            await asyncio.to_thread(wait_for, lambda: all(m.epoch != epoch for m in models), 30, 0.02, "viewer reset")
            viewers_reset_s = time.monotonic() - killed_at
            await asyncio.sleep(0.5)
            writing.set()
            await writer
            # After: another agent, on the promoted master.
            append_json(events_file, calls("s1", "a2", 50000, 20))
            written += [f"tu-{i}" for i in range(50000, 50020)]
            await asyncio.to_thread(
                wait_for, lambda: set(_ids(rig, keys)) >= set(written), 30, 0.05, "every call logged"
            )
            for m in models:
                await _converge(m, rig, keys)
            converged_s = time.monotonic() - killed_at
            assert replica.cli("PUBSUB", "SHARDNUMSUB", keys.channel).split()[-1] == "2"  # both moved over
            stop.set()
            await asyncio.gather(*viewers, poller)
            ids = _ids(rig, keys)
            relay_stats = [await asyncio.to_thread(_stats, base) for base in bases]
            running = all(p.proc.poll() is None for p in procs)
            ingest_log = ingest.output
        finally:
            stop.set()
            for proc in procs:
                proc.stop(timeout=10)
    print(
        f"cluster failover: {acknowledged - kept} acknowledged events lost and republished; after kill -9 the "
        f"replica was promoted at {promoted_s:.2f} s, first commit on it {first_commit_s:.2f} s, "
        f"both viewers reset {viewers_reset_s:.2f} s, converged {converged_s:.2f} s (after the last writes)"
    )
    assert running
    assert kept < acknowledged  # the cluster really lost acknowledged writes
    assert Counter(ids) == Counter(before + written)  # every call exactly once, counting across epochs
    assert "Redis unreachable" in ingest_log, ingest_log  # it waited the failover out by itself
    for stats in relay_stats:
        assert stats["reconnects"] >= 1 and stats["resets"] >= 1, stats
        assert [s["lease"] for s in stats["sources"]] == ["held"], stats
    assert 503 in statuses and statuses[-1] == 200
    for m in models:
        assert m.holes == [] and m.duplicates == 0 and m.resets >= 1
        assert {"s1/main", "s1/a2"} <= m.keys
