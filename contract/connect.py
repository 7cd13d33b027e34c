"""The one place a --redis-url becomes a redis-py asyncio client: redis://, rediss://, unix:// and Sentinel.

redis-py has no Sentinel URL, so we take the form Prefect and redisvl use:

    redis+sentinel://[user:password@]host[:port][,host[:port]...]/service[/db][?option=value&...]
    rediss+sentinel://...   the same over TLS, to the master and to the sentinels

A sentinel without a port listens on 26379. The user and password log in to the master and to the sentinels,
unless `sentinel_username=` or `sentinel_password=` is given: then the sentinels get those (empty: no login).
The other options are redis-py's URL options (`socket_timeout=`, `ssl_ca_certs=`, ...); the socket and TLS
ones apply to the sentinels too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")
SENTINEL_PORT = 26379
SENTINEL_EXAMPLE = "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster"
# Options that only name files or strings for TLS: redis-py passes them through uncast.
TLS_TEXT_OPTIONS = frozenset({"ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"})


@dataclass(frozen=True)
class SentinelURL:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    tls: bool
    master: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the master's connections
    sentinel: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the sentinels' connections


def sentinel_url_problem(url: str) -> str | None:
    """Why a redis+sentinel:// URL cannot work, in words for a one-line error; None when it looks usable."""
    try:
        parse_sentinel_url(url)
    except ValueError as exc:
        return str(exc)
    return None


def parse_sentinel_url(url: str) -> SentinelURL:
    """Split a redis+sentinel:// URL; a ValueError says what was expected."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in ("redis+sentinel", "rediss+sentinel"):
        raise ValueError(f"expected a URL like {SENTINEL_EXAMPLE}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"expected a valid URL ({exc}), e.g. {SENTINEL_EXAMPLE}") from None
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    sentinels = tuple(_sentinel_address(item) for item in hostlist.split(",")) if hostlist else ()
    if not sentinels:
        raise ValueError(f"expected at least one sentinel host:port, e.g. {SENTINEL_EXAMPLE}")
    path = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if not path or not path[0]:
        raise ValueError(f"expected the service name after the sentinels, e.g. {SENTINEL_EXAMPLE}")
    if len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError(f"expected /<service>[/<db number>] after the sentinels, got {parts.path!r}")
    tls = scheme == "rediss+sentinel"
    master: dict[str, Any] = {}
    user, _, password = userinfo.partition(":")
    if user:
        master["username"] = unquote(user)
    if password:
        master["password"] = unquote(password)
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


def _sentinel_address(item: str) -> tuple[str, int]:
    host, port = item, str(SENTINEL_PORT)
    if item.startswith("["):  # [IPv6 address]:port
        host, close, rest = item[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise ValueError(f"sentinel {item!r}: expected [IPv6 address]:port")
        port = rest[1:] or port
    elif ":" in item:
        host, port = item.rsplit(":", 1)
    if not host or any(c in host for c in " /?#[]"):
        raise ValueError(f"sentinel {item!r}: expected host:port, e.g. 127.0.0.1:26379")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"sentinel {item!r}: expected a port from 1 to 65535 after the host")
    return host, int(port)


def _option(name: str, value: str, tls: bool) -> Any:
    if name.startswith("ssl_") and not tls:
        raise ValueError(f"option {name!r} is for TLS: expected rediss+sentinel://")
    if name in TLS_TEXT_OPTIONS or name == "client_name":
        return value
    parser = URL_QUERY_ARGUMENT_PARSERS.get(name)
    if parser is None or name == "timeout":
        raise ValueError(f"unknown option {name!r}: expected sentinel_username, sentinel_password or a redis-py option")
    try:
        return parser(value)
    except (TypeError, ValueError):
        kind = {"int": "an integer", "float": "a number", "to_bool": "true or false"}.get(parser.__name__, "a value")
        raise ValueError(f"option {name!r} has value {value!r}: expected {kind}") from None


class SentinelRedis(Redis):
    """A client of the master a set of sentinels name; closing it closes the sentinel connections too."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            pool = self.connection_pool
            if isinstance(pool, SentinelConnectionPool):
                await pool.sentinel_manager.aclose()


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """Connections to whatever master the sentinels name now, at most max_connections, waiting for a free one."""


def redis_client(url: str, *, max_connections: int | None = None, wait_s: float | None = None, **options: Any) -> Redis:
    """A redis-py asyncio client for a --redis-url (validated first by contract.redis_url_problem).

    Args:
        url: redis://, rediss://, unix:// as redis-py takes them, or redis+sentinel:// / rediss+sentinel://.
        max_connections: the most connections the client opens.
        wait_s: with max_connections, a command waits up to wait_s for a free connection instead of failing
            with "Too many connections" (a relay with many viewers taking snapshots at once).
        options: connection options (socket_timeout=...); the URL's own options win, as in redis-py.

    A Sentinel client asks the sentinels for the master on every new connection and follows a failover:
    commands fail with ConnectionError (MasterNotFoundError while no master is named) until a replica is
    promoted, and a demoted master's ReadOnlyError becomes a ConnectionError, so the callers' retries apply.
    """
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


__all__ = ("SENTINEL_SCHEMES", "SentinelURL", "parse_sentinel_url", "redis_client", "sentinel_url_problem")
