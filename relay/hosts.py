"""DNS rebinding: the relay answers only for the host names it serves, and checks Origin against the same names.

After a rebinding, a web page's own host name points at this relay, so the page controls both Origin and Host
of its requests: neither may be trusted because they agree. What the page cannot choose is a name we serve.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .settings import Settings

__all__ = ("HostCheck", "origin_allowed", "served_hosts")

log = logging.getLogger("relay")

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
UNSPECIFIED = ("0.0.0.0", "[::]")  # a wildcard bind is no name anyone browses to
MISDIRECTED = 421
MAX_LOGGED_HOSTS = 256  # distinct refused hosts logged; a scan of random names must not fill the log or memory
MAX_LOGGED_CHARS = 100


def served_hosts(settings: Settings) -> frozenset[str]:
    """Host header values served: loopback names, the bind address, --allow-host; each bare or with our port."""
    names = list(LOOPBACK_NAMES)
    bind = f"[{settings.host}]" if ":" in settings.host else settings.host
    if not settings.loopback and bind not in UNSPECIFIED:
        names.append(bind.lower())
    names += settings.allowed_hosts
    hosts = set(names)
    hosts.update(f"{name}:{settings.port}" for name in names if not _has_port(name))
    return frozenset(hosts)


def origin_allowed(origin: str | None, hosts: frozenset[str], allowed_origins: tuple[str, ...]) -> bool:
    """Cross-site WebSocket hijacking: a browser always sends Origin; tools (curl, scripts) send none.

    Never compared with the request's own Host: after a DNS rebinding the page chose both.
    """
    if origin is None:
        return True
    origin = origin.rstrip("/")
    if origin in allowed_origins:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc.lower() in hosts


class HostCheck:
    """ASGI middleware: HTTP 421 Misdirected Request for any Host we do not serve, before the app sees it."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts
        self.logged: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        if host is not None and host.lower() in self.hosts:
            await self.app(scope, receive, send)
            return
        self._log(host)
        if scope["type"] == "websocket" and "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})  # a server without denial responses: 403
            return
        response = PlainTextResponse("misdirected request: this relay does not serve that host name\n", MISDIRECTED)
        await response(scope, receive, send)

    def _log(self, host: str | None) -> None:
        shown = (host or "")[:MAX_LOGGED_CHARS]
        if shown in self.logged or len(self.logged) > MAX_LOGGED_HOSTS:
            return
        self.logged.add(shown)
        if len(self.logged) > MAX_LOGGED_HOSTS:
            log.warning("refused requests for more than %d host names; no more are logged", MAX_LOGGED_HOSTS)
            return
        log.warning(
            "refused a request for host %r: not a name this relay serves (a DNS rebinding, or a name to allow "
            "with --allow-host)",
            shown if host is not None else None,
        )


def _has_port(name: str) -> bool:
    return name.rpartition(":")[2].isdigit() and not name.endswith("]")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None
