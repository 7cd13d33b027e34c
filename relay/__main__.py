"""python -m relay: serve the page and /stream from a real Redis until SIGINT/SIGTERM."""

from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette

from contract import (
    DEFAULT_REDIS_URL,
    OneLineParser,
    add_connection_arguments,
    check_connection,
    safe_url,
    setup_logging,
)

from .app import create_app
from .hosts import served_hosts
from .settings import Settings, SettingsError, add_arguments, from_args

log = logging.getLogger("relay")


def parse(argv: Sequence[str] | None, prog: str = "agentwatch relay") -> Settings:
    parser = OneLineParser(prog=prog, description="Serve the agentwatch page and its WebSocket from Redis.")
    add_connection_arguments(parser, DEFAULT_REDIS_URL, "Redis to read from (AGENTWATCH_REDIS_URL)")
    add_arguments(parser)
    ns = parser.parse_args(argv)
    check_connection(ns.redis_url, ns.prefix)
    return from_args(ns, ns.redis_url, ns.prefix)


def bind_socket(settings: Settings) -> socket.socket:
    """Bind before serving so a port in use is one clear line, not a traceback."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections whose socket says so. Without it, Nagle
    # held a frame for the viewer's delayed ACK: events came up to 40 ms late whenever frames grew past one event.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(
                f"--bind {settings.host}:{settings.port} is already in use; stop what holds it or pick another port"
            ) from None
        raise SettingsError(f"--bind {settings.host}:{settings.port} cannot be used: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def server(app: Starlette, settings: Settings) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        ws="websockets-sansio",  # closes a protocol violation (e.g. a compressed frame) with 1002, not a drop
        ws_max_size=settings.max_frame_bytes,  # inbound frames; bigger ones are closed with 1009 unbuffered
        ws_per_message_deflate=False,  # no compression: cheaper per viewer, and no decompression bombs
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        timeout_graceful_shutdown=int(settings.graceful_timeout_s),
        log_level="warning",
        lifespan="on",
    )
    return uvicorn.Server(config)


def main(argv: Sequence[str] | None = None, prog: str = "agentwatch relay") -> int:
    setup_logging()
    try:
        settings = parse(argv, prog)
        sock = bind_socket(settings)
    except SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    assert settings.redis_url is not None
    if settings.insecure and not settings.loopback and not settings.token:
        log.warning("serving %s without a token (--insecure): anyone who can reach it can watch", settings.host)
    log.info(
        "relay: serving http://%s:%d/ from Redis %s under prefix %r",
        settings.host,
        settings.port,
        safe_url(settings.redis_url),
        settings.prefix,
    )
    if not settings.loopback:
        names = sorted(h for h in served_hosts(settings) if not h.endswith(f":{settings.port}"))
        log.info("relay: answering only for Host %s; add the names viewers use with --allow-host", ", ".join(names))
    # uvicorn restores the previous handlers and re-raises the signal it caught: make that a no-op so a
    # graceful SIGTERM/SIGINT shutdown exits 0 instead of dying by the signal after the fact.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    server(create_app(settings), settings).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m relay"))
