"""Relay settings: a flag, else its environment variable, else the default."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from contract import DEFAULT_PREFIX, SettingsError, float_setting, int_setting

__all__ = ("DEFAULT_BIND", "Settings", "SettingsError", "add_arguments", "from_args", "parse_bind", "parse_hosts")

DEFAULT_BIND = "127.0.0.1:8201"
# An exact host name (letters, digits, '-', '_', '.') or a bracketed IPv6 address, with an optional port.
HOST_NAME = re.compile(r"(?:[a-z0-9_.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None  # None: the caller hands create_app a client (embedded Redis)
    prefix: str = DEFAULT_PREFIX
    host: str = "127.0.0.1"
    port: int = 8201
    token: str | None = None  # viewers present it as a bearer header or ?token=
    insecure: bool = False  # serve a non-loopback address without a token, knowingly
    allowed_origins: tuple[str, ...] = ()  # besides the pages of the served hosts
    allowed_hosts: tuple[str, ...] = ()  # Host names served besides loopback and the bind address
    queue_size: int = 2048  # events buffered per viewer before it counts as fallen behind
    send_timeout_s: float = 5.0  # a send blocked this long: the viewer is gone or stalled
    ping_interval_s: float = 30.0
    max_frame_bytes: int = 64 * 1024
    sync_interval_s: float = 1.0  # without traffic, check seq this often so a lost subscription is never silent
    graceful_timeout_s: float = 5.0
    replay_limit: int = 10_000  # a resume further behind than this gets a fresh snapshot instead
    max_replays: int = 8  # replay viewers at once (each reads the log at its own pace); more are refused
    max_loop_lag_s: float = 0.1  # the event loop this late twice in a row: over capacity, the slowest viewers are shed

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def exposure_problem(self) -> str | None:
        """Why this relay must not start as configured: anyone on the network could watch."""
        if self.loopback or self.token or self.insecure:
            return None
        return (
            f"--bind {self.host}:{self.port} is reachable from other machines: set AGENTWATCH_TOKEN "
            "(viewers then need it) or pass --insecure to serve without one"
        )


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str] = os.environ) -> None:
    group = parser.add_argument_group("relay")
    group.add_argument("--bind", default=env.get("AGENTWATCH_BIND", DEFAULT_BIND), help="HOST:PORT (AGENTWATCH_BIND)")
    group.add_argument(
        "--insecure",
        action="store_true",
        default=env.get("AGENTWATCH_INSECURE") == "1",
        help="allow a public bind without a token",
    )
    group.add_argument(
        "--allow-origin",
        action="append",
        default=[o for o in env.get("AGENTWATCH_ALLOWED_ORIGINS", "").split(",") if o],
        help="an extra Origin allowed to open /stream (repeatable; AGENTWATCH_ALLOWED_ORIGINS, comma separated)",
    )
    group.add_argument(
        "--allow-host",
        action="append",
        default=[h for h in env.get("AGENTWATCH_ALLOWED_HOSTS", "").split(",") if h],
        help="an extra host name served, e.g. agentwatch.example (repeatable or comma separated; "
        "AGENTWATCH_ALLOWED_HOSTS); other names get 421",
    )
    group.add_argument(
        "--ping-interval", default=env.get("AGENTWATCH_PING_INTERVAL", "30"), help="seconds between app pings"
    )
    group.add_argument(
        "--queue-size", default=env.get("AGENTWATCH_QUEUE_SIZE", "2048"), help="events buffered per viewer"
    )


def parse_bind(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"--bind has value {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8201")
    return host, int(port)


def parse_hosts(values: list[str]) -> tuple[str, ...]:
    """--allow-host values: exact names, each may carry a port; a bare IPv6 address is bracketed."""
    hosts: list[str] = []
    for raw in (part.strip() for item in values for part in item.split(",")):
        if not raw:
            continue
        value = raw.lower()
        with contextlib.suppress(ValueError):
            value = f"[{ipaddress.IPv6Address(value)}]"
        if not HOST_NAME.fullmatch(value):
            raise SettingsError(
                f"--allow-host has value {raw!r}: expected a host name like agentwatch.example or "
                "agentwatch.example:8443 (no scheme, path or wildcard)"
            )
        hosts.append(value)
    return tuple(hosts)


def from_args(
    ns: argparse.Namespace, redis_url: str | None, prefix: str, env: Mapping[str, str] = os.environ
) -> Settings:
    host, port = parse_bind(ns.bind)
    for origin in ns.allow_origin:
        if not origin.startswith(("http://", "https://")):
            raise SettingsError(
                f"--allow-origin has value {origin!r}: expected a scheme and host like https://example.org"
            )
    settings = Settings(
        redis_url=redis_url,
        prefix=prefix,
        host=host,
        port=port,
        token=env.get("AGENTWATCH_TOKEN") or None,
        insecure=ns.insecure,
        allowed_origins=tuple(o.rstrip("/") for o in ns.allow_origin),
        allowed_hosts=parse_hosts(ns.allow_host),
        queue_size=int_setting("--queue-size", ns.queue_size, 16),
        ping_interval_s=float_setting("--ping-interval", ns.ping_interval, 0.1),
    )
    if problem := settings.exposure_problem():
        raise SettingsError(problem)
    return settings
