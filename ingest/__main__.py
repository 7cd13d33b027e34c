"""python -m ingest: tail the events file into a real Redis until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from contract import (
    DEFAULT_REDIS_URL,
    OneLineParser,
    add_connection_arguments,
    check_connection,
    safe_url,
    setup_logging,
)
from contract.connect import redis_client

from .main import IngestError, check_redis, run
from .pricing import PricingError
from .redact import RedactError
from .settings import Settings, SettingsError, add_arguments, from_args


def parse(argv: Sequence[str] | None, prog: str = "agentwatch ingest") -> Settings:
    parser = OneLineParser(prog=prog, description="Tail the Claude Code hook events file into Redis.")
    add_connection_arguments(parser, DEFAULT_REDIS_URL, "Redis to write to (AGENTWATCH_REDIS_URL)")
    add_arguments(parser)
    ns = parser.parse_args(argv)
    check_connection(ns.redis_url, ns.prefix)
    return from_args(ns, ns.redis_url, ns.prefix)


async def serve(settings: Settings) -> None:
    assert settings.redis_url is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGTERM (docker stop) and SIGINT (Ctrl+C) only ask to stop: the current batch is committed first.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    redis = redis_client(settings.redis_url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=15)
    try:
        await check_redis(redis, settings.redis_url, wait_s=5.0)
        logging.getLogger("ingest").info(
            "ingest: reading %s, writing to Redis %s under prefix %r (source %s)",
            settings.events_file,
            safe_url(settings.redis_url),
            settings.prefix,
            settings.source_name,
        )
        await run(settings, redis, stop)
    finally:
        await redis.aclose()


def main(argv: Sequence[str] | None = None, prog: str = "agentwatch ingest") -> int:
    try:
        settings = parse(argv, prog)
    except SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    setup_logging()
    try:
        asyncio.run(serve(settings))
    except (IngestError, PricingError, RedactError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m ingest"))
