"""The one place a --redis-url becomes a redis-py asyncio client: redis://, rediss://, unix://, Sentinel, Cluster.

redis-py has no Sentinel URL, so we take the form Prefect and redisvl use:

    redis+sentinel://[user:password@]host[:port][,host[:port]...]/service[/db][?option=value&...]
    rediss+sentinel://...   the same over TLS, to the master and to the sentinels

A sentinel without a port listens on 26379. The user and password log in to the master and to the sentinels,
unless `sentinel_username=` or `sentinel_password=` is given: then the sentinels get those (empty: no login).
The other options are redis-py's URL options (`socket_timeout=`, `ssl_ca_certs=`, ...); the socket and TLS
ones apply to the sentinels too.

A Redis Cluster is named by any of its nodes (the client finds the others and follows failovers):

    redis+cluster://[user:password@]host[:port][,host[:port]...][/0][?option=value&...]
    rediss+cluster://...    the same over TLS

A node without a port listens on 6379; a Cluster has only db 0. On a Cluster every name of a prefix carries
a hash tag (contract.Keys), and events go through sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis >= 7.0).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    MaxConnectionsError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from . import CLUSTER_SCHEMES

SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")
SENTINEL_PORT = 26379
SENTINEL_EXAMPLE = "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster"
CLUSTER_PORT = 6379
CLUSTER_EXAMPLE = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
# Options that only name files or strings for TLS: redis-py passes them through uncast.
TLS_TEXT_OPTIONS = frozenset({"ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"})
# The URL options a RedisCluster takes (it has no db, unix path or connection pool of its own).
CLUSTER_OPTIONS = frozenset(inspect.signature(RedisCluster.__init__).parameters) - {"db", "path"}


@dataclass(frozen=True)
class SentinelURL:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    tls: bool
    master: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the master's connections
    sentinel: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the sentinels' connections


def sentinel_url_problem(url: str) -> str | None:
    """Why a redis+sentinel:// URL cannot work, in words for a one-line error; None when it looks usable."""
    return _problem(parse_sentinel_url, url)


def parse_sentinel_url(url: str) -> SentinelURL:
    """Split a redis+sentinel:// URL; a ValueError says what was expected."""
    scheme, parts, userinfo, sentinels = _split(
        url, ("redis+sentinel", "rediss+sentinel"), SENTINEL_EXAMPLE, "sentinel", "sentinel", SENTINEL_PORT
    )
    path = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if not path or not path[0]:
        raise ValueError(f"expected the service name after the sentinels, e.g. {SENTINEL_EXAMPLE}")
    if len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError(f"expected /<service>[/<db number>] after the sentinels, got {parts.path!r}")
    tls = scheme == "rediss+sentinel"
    master = _login(userinfo)
    sentinel = dict(master)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name in ("sentinel_username", "sentinel_password") for name, _ in query):
        sentinel = {}  # the sentinels have their own login (or none: an empty value)
    for name, value in query:
        if name in ("sentinel_username", "sentinel_password"):
            if value:
                sentinel[name.removeprefix("sentinel_")] = value
            continue
        master[name] = _option(name, value, tls)
        if name.startswith(("socket_", "ssl_")):
            sentinel[name] = master[name]
    if len(path) == 2:
        master.setdefault("db", int(path[1]))
    if tls:
        sentinel["ssl"] = True
    return SentinelURL(sentinels, unquote(path[0]), tls, master, sentinel)


def _address(item: str, kind: str, default_port: int) -> tuple[str, int]:
    host, port = item, str(default_port)
    if item.startswith("["):  # [IPv6 address]:port
        host, close, rest = item[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise ValueError(f"{kind} {item!r}: expected [IPv6 address]:port")
        port = rest[1:] or port
    elif ":" in item:
        host, port = item.rsplit(":", 1)
    if not host or any(c in host for c in " /?#[]"):
        raise ValueError(f"{kind} {item!r}: expected host:port, e.g. 127.0.0.1:{default_port}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{kind} {item!r}: expected a port from 1 to 65535 after the host")
    return host, int(port)


def _option(name: str, value: str, tls: bool, tls_scheme: str = "rediss+sentinel://") -> Any:
    if name.startswith("ssl_") and not tls:
        raise ValueError(f"option {name!r} is for TLS: expected {tls_scheme}")
    if name in TLS_TEXT_OPTIONS or name == "client_name":
        return value
    parser = URL_QUERY_ARGUMENT_PARSERS.get(name)
    if parser is None or name == "timeout":  # a cluster's options were checked against CLUSTER_OPTIONS first
        raise ValueError(f"unknown option {name!r}: expected sentinel_username, sentinel_password or a redis-py option")
    try:
        return parser(value)
    except (TypeError, ValueError):
        kind = {"int": "an integer", "float": "a number", "to_bool": "true or false"}.get(parser.__name__, "a value")
        raise ValueError(f"option {name!r} has value {value!r}: expected {kind}") from None


@dataclass(frozen=True)
class ClusterURL:
    nodes: tuple[tuple[str, int], ...]  # where to start: the client learns every other node from them
    tls: bool
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of every node's connections


def cluster_url_problem(url: str) -> str | None:
    """Why a redis+cluster:// URL cannot work, in words for a one-line error; None when it looks usable."""
    return _problem(parse_cluster_url, url)


def _problem(parse: Callable[[str], object], url: str) -> str | None:
    try:
        parse(url)
    except ValueError as exc:
        return str(exc)
    return None


def _login(userinfo: str) -> dict[str, Any]:
    """The `user:password@` of a URL as connection keyword arguments."""
    user, _, password = userinfo.partition(":")
    login: dict[str, Any] = {}
    if user:
        login["username"] = unquote(user)
    if password:
        login["password"] = unquote(password)
    return login


def parse_cluster_url(url: str) -> ClusterURL:
    """Split a redis+cluster:// URL; a ValueError says what was expected."""
    schemes = tuple(s.removesuffix("://") for s in CLUSTER_SCHEMES)
    scheme, parts, userinfo, nodes = _split(url, schemes, CLUSTER_EXAMPLE, "cluster node", "node", CLUSTER_PORT)
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError(f"expected no path or /0 after the nodes (a Redis Cluster has only db 0), got {parts.path!r}")
    tls = scheme == "rediss+cluster"
    options = _login(userinfo)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in CLUSTER_OPTIONS:
            raise ValueError(f"unknown option {name!r}: expected a redis-py option a cluster client takes")
        options[name] = _option(name, value, tls, "rediss+cluster://")
    return ClusterURL(nodes, tls, options)


def _split(
    url: str, schemes: tuple[str, ...], example: str, what: str, kind: str, port: int
) -> tuple[str, SplitResult, str, tuple[tuple[str, int], ...]]:
    """A multi-host URL's scheme, its parts, its login and its hosts (at least one); a ValueError says what was
    expected."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in schemes:
        raise ValueError(f"expected a URL like {example}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"expected a valid URL ({exc}), e.g. {example}") from None
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    hosts = tuple(_address(item, kind, port) for item in hostlist.split(",")) if hostlist else ()
    if not hosts:
        raise ValueError(f"expected at least one {what} host:port, e.g. {example}")
    return scheme, parts, userinfo, hosts


class SentinelRedis(Redis):
    """A client of the master a set of sentinels name; closing it closes the sentinel connections too."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            pool = self.connection_pool
            if isinstance(pool, SentinelConnectionPool):
                await pool.sentinel_manager.aclose()


# What a Cluster raises while it moves a slot to a new master (failover) or cannot be reached at all: the
# same as a single Redis going away, so every caller's retry applies (ingest waits, the relay resubscribes).
CLUSTER_TRANSIENT = (ClusterDownError, ClusterError, SlotNotCoveredError, TryAgainError)
CLUSTER_UNREACHABLE = ("Redis Cluster cannot be connected", "All slots are not covered", "startup_nodes could not")


class ClusterTooOld(RedisConnectionError):
    """The cluster's Redis has no sharded pub/sub (before 7.0). A ConnectionError so it is said in one line
    where an unreachable Redis is; redis-py's cluster retries only the exact error types, so not this one."""


SHARDED_PUBSUB_SINCE = (7, 0)


def too_old_for_sharded_pubsub(version: str) -> bool:
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return False  # a fork with its own numbering: let SSUBSCRIBE say whether it works
    return major_minor < SHARDED_PUBSUB_SINCE


class ClusterRedis(RedisCluster):
    """A redis-py RedisCluster whose outages read like a single Redis' (ConnectionError), and which can make a
    command wait for a free connection (as the relay's BlockingConnectionPool does) instead of failing.

    Routing stays redis-py's: EVALSHA by its keys' slot, MOVED and ASK followed, the slot map reloaded after a
    connection error. What it still cannot fix after its own retries is raised for the caller to retry.
    """

    def __init__(self, *args: Any, max_waiting: int | None = None, wait_s: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # At most max_waiting commands at once, each on one connection of one node: a node's pool (sized above
        # this) never runs out, which in redis-py's cluster client fails a command at once.
        self._gate = asyncio.Semaphore(max_waiting) if max_waiting else None
        self._wait_s = wait_s
        self._version_checked = False

    async def initialize(self, *args: Any, **kwargs: Any) -> ClusterRedis:
        await super().initialize(*args, **kwargs)
        if self._version_checked or self.nodes_manager.default_node is None:
            return self
        try:
            info = await self.nodes_manager.default_node.execute_command("INFO", "server")
            version = str(info.get("redis_version", "")) if isinstance(info, dict) else ""
            if too_old_for_sharded_pubsub(version):
                raise ClusterTooOld(f"Redis {version} has no sharded pub/sub: on a Cluster agentwatch needs Redis 7.0+")
        except BaseException:
            self._initialize = True  # checked again before the next command, never skipped
            await self.nodes_manager.aclose()  # as redis-py does when initializing fails: no socket left open
            await self.nodes_manager.aclose("startup_nodes")
            raise
        self._version_checked = True
        return self

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            if self._gate is None:
                return await super().execute_command(*args, **kwargs)
            try:
                async with asyncio.timeout(self._wait_s):
                    await self._gate.acquire()
            except TimeoutError:
                raise MaxConnectionsError(f"no free connection to the cluster within {self._wait_s}s") from None
            try:
                return await super().execute_command(*args, **kwargs)
            finally:
                self._gate.release()
        except CLUSTER_TRANSIENT as exc:
            raise RedisConnectionError(f"Redis Cluster: {exc}") from exc
        except RedisClusterException as exc:
            if str(exc).startswith(CLUSTER_UNREACHABLE):
                raise RedisConnectionError(str(exc)) from exc
            raise  # a bug, e.g. keys of one command in two slots: never retried as if it were an outage


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """Connections to whatever master the sentinels name now, at most max_connections, waiting for a free one."""


def redis_client(url: str, *, max_connections: int | None = None, wait_s: float | None = None, **options: Any) -> Redis:
    """A redis-py asyncio client for a --redis-url (validated first by contract.redis_url_problem).

    Args:
        url: redis://, rediss://, unix:// as redis-py takes them, redis+sentinel:// / rediss+sentinel://, or
            redis+cluster:// / rediss+cluster://.
        max_connections: the most connections the client opens.
        wait_s: with max_connections, a command waits up to wait_s for a free connection instead of failing
            with "Too many connections" (a relay with many viewers taking snapshots at once).
        options: connection options (socket_timeout=...); the URL's own options win, as in redis-py.

    A Sentinel client asks the sentinels for the master on every new connection and follows a failover:
    commands fail with ConnectionError (MasterNotFoundError while no master is named) until a replica is
    promoted, and a demoted master's ReadOnlyError becomes a ConnectionError, so the callers' retries apply.

    A Cluster client (a RedisCluster, typed as a Redis: it answers every command agentwatch sends) routes each
    command by its keys' slot and follows failovers the same way (ClusterRedis).
    """
    if url.startswith(CLUSTER_SCHEMES):
        return _cluster_client(url, max_connections, wait_s, options)
    if not url.startswith(SENTINEL_SCHEMES):
        if wait_s is not None:
            pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=wait_s, **options)
            return Redis(connection_pool=pool)
        if max_connections is not None:
            options["max_connections"] = max_connections
        return Redis.from_url(url, **options)
    parsed = parse_sentinel_url(url)
    master = {**options, **parsed.master}
    if max_connections is not None:
        master.setdefault("max_connections", max_connections)
    pool_class: type[SentinelConnectionPool] = SentinelConnectionPool
    if wait_s is not None:
        pool_class = BlockingSentinelConnectionPool
        master["timeout"] = wait_s
    # Only socket options reach the sentinels unless sentinel_kwargs is given, so timeouts are copied too.
    sentinel_kwargs = {k: v for k, v in master.items() if k.startswith("socket_")} | parsed.sentinel
    sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    client: Redis = sentinel.master_for(
        parsed.service, redis_class=SentinelRedis, connection_pool_class=pool_class, ssl=parsed.tls, **master
    )
    return client


def _cluster_client(url: str, max_connections: int | None, wait_s: float | None, options: dict[str, Any]) -> Redis:
    parsed = parse_cluster_url(url)
    kwargs = {**options, **parsed.options}
    if max_connections is not None:
        kwargs.setdefault("max_connections", max_connections)
    if wait_s is not None:
        # Commands wait at the gate; each node's pool keeps room beyond it for pub/sub connections.
        kwargs["max_waiting"] = kwargs.get("max_connections", max_connections or 32)
        kwargs["max_connections"] = kwargs["max_waiting"] + 8
        kwargs["wait_s"] = wait_s
    nodes = [ClusterNode(host, port) for host, port in parsed.nodes]
    return cast(Redis, ClusterRedis(startup_nodes=nodes, ssl=parsed.tls, **kwargs))


__all__ = (
    "ClusterRedis",
    "ClusterTooOld",
    "ClusterURL",
    "SENTINEL_SCHEMES",
    "SentinelURL",
    "cluster_url_problem",
    "parse_cluster_url",
    "parse_sentinel_url",
    "redis_client",
    "sentinel_url_problem",
)
