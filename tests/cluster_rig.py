"""A Redis Cluster on loopback for tests and the benchmark: six redis-servers, three masters with a replica each.

Every node gets a port whose cluster bus port (port + 10000) is free too, its own temp directory (nodes.conf
lives there), `--cluster-node-timeout 2000` (a dead master is replaced in a few seconds, not 15) and
`--repl-diskless-sync-delay 0` (replicas sync at once: a replica promoted during its first sync would be
promoted empty). Each process is registered in tests.stack.STARTED (so the `reap` fixture kills it by pid when
a test fails half-way) and stopped by pid in close(). See ../shared/reference/team-scale.md §3, §7.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from tests.stack import RedisServer, wait_for

NODES = 6
BUS_OFFSET = 10000  # Redis Cluster's bus port is the data port + 10000
# Data ports below 22768, so bus ports stay under Linux's ephemeral range (32768-60999) that clients draw from.
PORT_RANGE = (12000, 22700)
CLUSTER_ARGS = (
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    "nodes.conf",
    "--cluster-node-timeout",
    "2000",
    "--repl-diskless-sync-delay",
    "0",
)


@dataclass(frozen=True)
class Node:
    """One line of CLUSTER NODES."""

    id: str
    port: int
    master: bool
    failed: bool
    master_id: str | None  # a replica's master
    slots: tuple[tuple[int, int], ...]

    def owns(self, slot: int) -> bool:
        return any(lo <= slot <= hi for lo, hi in self.slots)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int = NODES) -> list[int]:
    """`count` ports whose bus ports are free too (free_port() draws ephemeral ports, whose +10000 may not exist)."""
    rng = random.Random()
    ports: list[int] = []
    for _ in range(2000):
        port = rng.randrange(*PORT_RANGE)
        if port not in ports and _free(port) and _free(port + BUS_OFFSET):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"no {count} free port pairs (port, port+{BUS_OFFSET}) in {PORT_RANGE}")


class ClusterRig:
    """Six cluster-enabled redis-servers joined by `redis-cli --cluster create ... --cluster-replicas 1`."""

    def __init__(self) -> None:
        self.servers = [RedisServer(port, extra=CLUSTER_ARGS) for port in free_cluster_ports()]

    def url(self, *servers: RedisServer) -> str:
        """redis+cluster:// naming these nodes (all six when none are given)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in servers or self.servers)

    def start(self) -> None:
        for server in self.servers:
            server.start()
        create = ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in self.servers)]
        out = subprocess.run(
            [*create, "--cluster-replicas", "1", "--cluster-yes"], capture_output=True, text=True, timeout=60
        )
        if out.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
        wait_for(
            self.healthy, timeout=30, interval=0.05, what="every node agreeing, cluster_state:ok, replicas in sync"
        )

    def healthy(self) -> bool:
        """Every node sees 3 masters owning all slots and 3 replicas, none failing; every replica is in sync."""
        for server in self.live():
            if "cluster_state:ok" not in server.cli("CLUSTER", "INFO"):
                return False
            nodes = self.nodes(server)
            masters = [n for n in nodes if n.master and n.slots and not n.failed]
            replicas = [n for n in nodes if not n.master and not n.failed]
            if len(masters) != 3 or len(replicas) != NODES - 3:
                return False
            if sum(hi - lo + 1 for n in masters for lo, hi in n.slots) != 16384:
                return False
            if any(not n.master for n in nodes if n.port == server.port):
                if "master_link_status:up" not in server.cli("INFO", "replication"):
                    return False
        return True

    def live(self) -> list[RedisServer]:
        return [s for s in self.servers if s.proc is not None and s.proc.poll() is None]

    def nodes(self, server: RedisServer | None = None) -> list[Node]:
        """CLUSTER NODES as one node (by default the first live one) sees it."""
        server = server or self.live()[0]
        out = []
        for line in server.cli("CLUSTER", "NODES").splitlines():
            fields = line.split()
            if len(fields) < 8:
                continue
            flags = fields[2].split(",")
            slots = tuple(
                (int(lo), int(hi or lo))
                for lo, _, hi in (f.partition("-") for f in fields[8:] if not f.startswith("["))
            )
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            master_id = None if fields[3] == "-" else fields[3]
            out.append(Node(fields[0], port, "master" in flags, "fail" in flags, master_id, slots))
        return out

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def slot(self, key: str) -> int:
        return int(self.live()[0].cli("CLUSTER", "KEYSLOT", key).strip())

    def master_of(self, key: str) -> RedisServer:
        """The master serving key's slot now, as every live node sees it (raises while they disagree)."""
        slot = self.slot(key)
        seen = {n.port for s in self.live() for n in self.nodes(s) if n.master and not n.failed and n.owns(slot)}
        if len(seen) != 1:
            raise LookupError(f"nodes disagree on the master of slot {slot}: {sorted(seen)}")
        return self.server(seen.pop())

    def replica_of(self, master: RedisServer) -> RedisServer:
        nodes = self.nodes(master)
        me = next(n for n in nodes if n.port == master.port)
        return self.server(next(n.port for n in nodes if n.master_id == me.id))

    def cli(self, *args: str) -> str:
        """redis-cli -c (follows MOVED) on a live node: read a key wherever its slot is served."""
        port = self.live()[0].port
        out = subprocess.run(["redis-cli", "-c", "-p", str(port), *args], capture_output=True, text=True, timeout=10)
        return out.stdout

    def close(self) -> None:
        for server in self.servers:
            server.close()


@contextlib.contextmanager
def cluster_rig() -> Iterator[ClusterRig]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise RuntimeError("redis-server is not installed: run `make test` or apt-get install redis-server")
    rig = ClusterRig()
    try:
        rig.start()
        yield rig
    finally:
        rig.close()
