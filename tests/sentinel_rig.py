"""A Redis Sentinel deployment on loopback for tests: a master, one replica and three sentinels.

Every process gets a free port and its own temp directory, is registered in tests.stack.STARTED (so the
`reap` fixture kills it by pid when a test fails half-way) and is stopped by pid in close().
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.stack import STARTED, RedisServer, free_port, wait_for

SERVICE = "m"


class SentinelServer:
    """One `redis-server <conf> --sentinel`: Sentinel rewrites its config file, so it lives in our temp dir."""

    def __init__(self, master_port: int, service: str = SERVICE) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="agentwatch-sentinel-"))
        self.conf = self.dir / "sentinel.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {service} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {service} 1000\n"
            f"sentinel failover-timeout {service} 5000\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make test` or apt-get install redis-server")
        self.proc = subprocess.Popen(
            [binary, str(self.conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        STARTED.append(self.proc)
        wait_for(lambda: self.cli("PING").strip() == "PONG", what=f"sentinel on port {self.port}")

    def cli(self, *args: str) -> str:
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10)
        return out.stdout

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelRig:
    """master + replica (diskless sync without delay) + 3 sentinels with quorum 2 and a 1 s down-after."""

    def __init__(self, service: str = SERVICE) -> None:
        self.service = service
        sync = ("--repl-diskless-sync-delay", "0")
        self.master = RedisServer(extra=sync)
        self.replica = RedisServer(extra=(*sync, "--replicaof", "127.0.0.1", str(self.master.port)))
        self.sentinels = [SentinelServer(self.master.port, service) for _ in range(3)]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        # A replica promoted during its first sync is promoted empty (team-scale.md §7): wait for the link.
        wait_for(lambda: "master_link_status:up" in self.replica.cli("INFO", "replication"), what="replica in sync")
        for sentinel in self.sentinels:
            sentinel.start()
        # The sentinels find each other through hello messages on the master (every 2 s) and the replica
        # through the master's INFO: wait until each one could authorize a failover.
        wait_for(
            lambda: (
                all(s.cli("SENTINEL", "CKQUORUM", self.service).startswith("OK 3 ") for s in self.sentinels)
                and all(str(self.replica.port) in s.cli("SENTINEL", "REPLICAS", self.service) for s in self.sentinels)
            ),
            timeout=20,
            interval=0.1,
            what="3 sentinels agreeing on the quorum and knowing the replica",
        )

    def master_port(self) -> int:
        """The master the sentinels name now (asked of the first sentinel that answers)."""
        for sentinel in self.sentinels:
            out = sentinel.cli("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service).split()
            if len(out) == 2:
                return int(out[1])
        raise RuntimeError("no sentinel names a master")

    def close(self) -> None:
        for sentinel in self.sentinels:
            with contextlib.suppress(Exception):
                sentinel.close()
        for server in (self.replica, self.master):
            server.close()


@contextlib.contextmanager
def sentinel_rig(service: str = SERVICE) -> Iterator[SentinelRig]:
    rig = SentinelRig(service)
    try:
        rig.start()
        yield rig
    finally:
        rig.close()
