"""The `agentwatch` command: composes ingest and relay, which never import each other.

agentwatch up [--demo]   ingest + relay in one process; an embedded Redis unless --redis-url is given
agentwatch ingest        the ingest alone, against a real Redis (same as python -m ingest)
agentwatch relay         the relay alone, against a real Redis (same as python -m relay)
agentwatch hooks ...     install, uninstall or print the Claude Code hook entries
agentwatch share --session ID [--ttl 1h]   print a read-only link to one session (signed with AGENTWATCH_TOKEN)
agentwatch status [--json]   every ingest source: its host, lease, last commit and lag
agentwatch export --since 2h [--session ID] > file.jsonl   the replay window's envelopes
agentwatch up --replay file.jsonl   play an exported file in the page, without Claude Code
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

import ingest.__main__ as ingest_cli
import relay.__main__ as relay_cli
from contract import (
    Keys,
    OneLineParser,
    SettingsError,
    add_connection_arguments,
    check_connection,
    safe_url,
    setup_logging,
)
from contract.connect import redis_client
from ingest import Settings as IngestSettings
from ingest import run as run_ingest
from ingest.main import IngestError, check_redis
from ingest.pricing import PricingError
from ingest.redact import RedactError
from ingest.settings import add_arguments as ingest_arguments
from ingest.settings import from_args as ingest_from_args
from relay import Settings as RelaySettings
from relay import create_app
from relay.settings import add_arguments as relay_arguments
from relay.settings import from_args as relay_from_args

from . import demo, export

log = logging.getLogger("agentwatch")
USAGE = __doc__ or ""


@dataclasses.dataclass(frozen=True)
class Extras:
    """What `up` does besides ingest and relay."""

    demo: bool = False
    replay: Path | None = None  # an exported file to play instead of ingesting


def parse_up(argv: Sequence[str]) -> tuple[IngestSettings, RelaySettings, Extras]:
    parser = OneLineParser(prog="agentwatch up", description="Run ingest and relay in one process.")
    add_connection_arguments(
        parser, None, "a real Redis (AGENTWATCH_REDIS_URL); without it an embedded in-process Redis is used"
    )
    parser.add_argument("--demo", action="store_true", help="play a sample session into the events file")
    parser.add_argument(
        "--replay", default=None, help="play a file written by `agentwatch export` in the page (no ingest)"
    )
    ingest_arguments(parser)
    relay_arguments(parser)
    ns = parser.parse_args(argv)
    check_connection(ns.redis_url, ns.prefix)
    ingest = ingest_from_args(ns, ns.redis_url, ns.prefix)
    replay = Path(os.path.expanduser(ns.replay)) if ns.replay else None
    if replay is not None and (ns.redis_url or ns.demo):
        raise SettingsError(
            "--replay plays a file into the embedded Redis, never a shared one: drop --redis-url and --demo"
        )
    if replay is not None and not replay.is_file():
        raise SettingsError(f"--replay has value {ns.replay!r}: expected a file written by agentwatch export")
    if ns.demo:
        ingest = dataclasses.replace(ingest, events_file=demo.events_file(argv, ingest.events_file))
    return ingest, relay_from_args(ns, ns.redis_url, ns.prefix), Extras(ns.demo, replay)


def embedded_clients() -> tuple[Redis, Redis]:
    """Two clients (the relay's pub/sub needs its own connection) on one in-process fakeredis server."""
    import fakeredis

    server = fakeredis.FakeServer()
    return fakeredis.FakeAsyncRedis(server=server), fakeredis.FakeAsyncRedis(server=server)


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event, on_stop: Any) -> Iterator[None]:
    """SIGINT/SIGTERM only ask to stop; the work winds down in normal code (uvicorn's style)."""
    loop = asyncio.get_running_loop()

    def handler(signum: int, frame: object) -> None:
        loop.call_soon_threadsafe(stop.set)
        loop.call_soon_threadsafe(on_stop)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


async def up(ingest_settings: IngestSettings, relay_settings: RelaySettings, extras: Extras) -> None:
    with_demo = extras.demo
    recorded = export.read_file(extras.replay) if extras.replay is not None else None
    sock = relay_cli.bind_socket(relay_settings)
    if ingest_settings.redis_url:
        ingest_redis: Redis = redis_client(ingest_settings.redis_url, socket_connect_timeout=5)
        relay_redis: Redis = redis_client(ingest_settings.redis_url, socket_connect_timeout=5)
        where = f"Redis {safe_url(ingest_settings.redis_url)}"
        await check_redis(ingest_redis, ingest_settings.redis_url, wait_s=5.0)
    else:
        ingest_redis, relay_redis = embedded_clients()
        where = "an embedded in-process Redis (nothing persists; pass --redis-url for a real one)"
    try:
        ingest_settings.events_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        folder = ingest_settings.events_file.parent
        raise IngestError(
            f"cannot create the events folder {folder} ({exc.strerror}); pick another --events-file"
        ) from None
    server = relay_cli.server(create_app(relay_settings, redis=relay_redis), relay_settings)
    stop = asyncio.Event()
    page = ""
    if recorded is not None:
        keys = Keys.for_url(ingest_settings.prefix, None)
        count = await export.load(ingest_redis, keys, *recorded)
        page = "?replay=0"
        print(f"agentwatch: playing {extras.replay} ({count} events), state in {where}", file=sys.stderr)
    else:
        print(f"agentwatch: reading {ingest_settings.events_file}, state in {where}", file=sys.stderr)

    def stop_server() -> None:
        server.should_exit = True

    with stop_on_signals(stop, stop_server):
        tasks = []
        if recorded is None:
            tasks.append(asyncio.create_task(run_ingest(ingest_settings, ingest_redis, stop), name="ingest"))
        if with_demo:
            print(
                f"agentwatch: --demo plays invented sessions into {ingest_settings.events_file}"
                " (its own file, never the one your hook writes)",
                file=sys.stderr,
            )
            tasks.append(asyncio.create_task(demo.play(ingest_settings.events_file, stop), name="demo"))
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="relay")
        try:
            while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no "listening" event
                await asyncio.sleep(0.02)
            if server.started:
                host, port = relay_settings.host, relay_settings.port
                print(
                    f"agentwatch: open http://{host}:{port}/{page}  (WebSocket at ws://{host}:{port}/stream)",
                    file=sys.stderr,
                )
            await serving
        finally:
            stop.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await ingest_redis.aclose()
            await relay_redis.aclose()
            if with_demo:
                demo.remove_temporary(ingest_settings.events_file)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command, rest = (args[0], args[1:]) if args else ("", [])
    if command == "ingest":
        return ingest_cli.main(rest)
    if command == "relay":
        return relay_cli.main(rest)
    if command == "hooks":
        from . import hooks

        return hooks.main(rest)
    if command == "share":
        from . import share

        return share.main(rest)
    if command == "status":
        from . import status

        return status.main(rest)
    if command == "export":
        return export.main(rest)
    if command in ("", "-h", "--help"):
        print(USAGE.strip(), file=sys.stdout if command else sys.stderr)
        return 0 if command else 2
    if command != "up":
        expected = "up, ingest, relay, hooks, share, status or export"
        print(f"agentwatch: unknown command {command!r}; expected {expected}", file=sys.stderr)
        return 2
    setup_logging()
    try:
        settings = parse_up(rest)
        asyncio.run(up(*settings))
    except SettingsError as exc:
        print(f"agentwatch up: {exc}", file=sys.stderr)
        return 2
    except (IngestError, PricingError, RedactError, export.ReplayFileError) as exc:
        print(f"agentwatch up: {exc}", file=sys.stderr)
        return 1
    return 0
