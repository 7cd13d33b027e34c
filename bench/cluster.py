"""A Redis Cluster for the fan-out figure: tests/cluster_rig.py's six nodes (3 masters + 3 replicas on loopback),
seen by the harness the way it sees one redis-server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from contract import Keys
from tests.cluster_rig import ClusterRig, cluster_rig


class ClusterTarget:
    """What bench.harness.system needs of a Redis: a --redis-url, redis-cli, and the pid whose CPU is measured."""

    def __init__(self, rig: ClusterRig) -> None:
        self.rig = rig

    @property
    def url(self) -> str:
        return self.rig.url()

    def cli(self, *args: str) -> str:
        return self.rig.cli(*args)

    def pid_for(self, prefix: str) -> int:
        """The master serving the prefix's slot: the one node that runs its commits and its shard channel."""
        proc = self.rig.master_of(Keys(prefix, cluster=True).meta).proc
        assert proc is not None
        return proc.pid


@contextlib.contextmanager
def started_cluster() -> Iterator[ClusterTarget]:
    with cluster_rig() as rig:
        yield ClusterTarget(rig)
