"""create_app(settings): the page, the /stream WebSocket, /health and /ready. Stateless: Redis holds the state."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import TypedDict

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from contract import Keys
from contract.connect import redis_client

from . import overload
from .hosts import HostCheck, origin_allowed, served_hosts
from .hub import Hub, Viewer
from .replay import OutsideWindow, Player, Window, parse_point, parse_speed, play
from .settings import Settings
from .share import Share, ShareRefused, verify
from .sources import SourcesView
from .writer import watchdog, write

log = logging.getLogger("relay")

# Close codes a viewer can see (besides 1001 going away, 1009 frame too big, 1012 relay restarting).
CLOSE_POLICY = 1008  # flood of frames from a viewer that should only listen
CLOSE_ERROR = 1011  # the relay could not serve this viewer (e.g. Redis failed mid-snapshot)
CLOSE_SLOW = 4008  # fell behind the live stream; reconnect (with since/epoch) for a resume or a fresh snapshot
CLOSE_SHARE_EXPIRED = 4401  # a share link's time is up: final, a page stops reconnecting
CLOSE_REPLAY_REFUSED = 4404  # a replay the relay cannot serve (outside the window, bad point, busy): final
CLOSE_TIMEOUT_S = 1.0  # how long a closing handshake may take before the socket is simply dropped
# /ready waits this long for Redis (and /stats not at all, relay/sources.py): both answer within a second even on
# a relay whose loop runs late, where every round trip takes several of its turns.
READY_TIMEOUT_S = 0.5
MAX_FRAMES_PER_SECOND = 20  # viewers send nothing in our protocol; this much is abuse, not a client
# How a viewer's going away shows up: Starlette raises RuntimeError for a send after close.
DISCONNECTED = (WebSocketDisconnect, RuntimeError, OSError)
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}
PLACEHOLDER = """<!doctype html><meta charset="utf-8"><title>agentwatch</title>
<body style="background:#0f172a;color:#e2e8f0;font-family:system-ui">
<h1>agentwatch relay</h1><p>The live graph page is not installed here. Events stream at <code>/stream</code>.</p>
"""


class State(TypedDict):
    hub: Hub
    sources: SourcesView
    redis: Redis
    settings: Settings
    hosts: frozenset[str]


def web_file(name: str) -> Path | None:
    """A file of the bundled web page (or of its pinned d3), when it exists."""
    try:
        path = Path(str(resources.files("web").joinpath(name)))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


def create_app(settings: Settings, redis: Redis | None = None) -> Starlette:
    """The relay app. Pass `redis` to share a client (the embedded mode); else one is made from settings."""
    hosts = served_hosts(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        own = redis is None
        client = redis if redis is not None else _client(settings.redis_url or "")
        keys = Keys.for_url(settings.prefix, settings.redis_url)
        hub = Hub(client, keys, settings.sync_interval_s, settings.queue_size)
        task = asyncio.create_task(hub.run(), name="relay-hub")
        dog = asyncio.create_task(watchdog(hub, settings.send_timeout_s), name="relay-send-watchdog")
        lag = asyncio.create_task(
            overload.monitor(lambda: hub.viewers, hub.fanout.behind, hub.stats, settings.max_loop_lag_s),
            name="relay-overload",
        )
        sources = SourcesView(client, keys)
        kept = asyncio.create_task(sources.keep(), name="relay-sources")
        try:
            yield {"hub": hub, "sources": sources, "redis": client, "settings": settings, "hosts": hosts}
        finally:
            for t in (task, dog, lag, kept):
                t.cancel()
            for t in (task, dog, lag, kept):
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            if own:
                await client.aclose()

    routes = [
        Route("/", page),
        Route("/static/{name}", static),
        Route("/vendor/d3.js", d3),
        Route("/health", health),
        Route("/ready", ready),
        Route("/stats", stats),
        Route("/replay/window", replay_window),
        WebSocketRoute("/stream", stream),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(HostCheck, hosts=hosts)])


def _client(url: str) -> Redis:
    # Hundreds of viewers may connect at once, each taking a snapshot: they wait for one of a bounded set of
    # connections instead of failing with "Too many connections".
    return redis_client(url, max_connections=32, wait_s=20, socket_connect_timeout=5)


async def page(request: Request) -> Response:
    index = web_file("index.html")
    if index is None:
        return HTMLResponse(PLACEHOLDER)
    return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    kind = STATIC_TYPES.get(Path(name).suffix)
    path = web_file(name) if kind and "/" not in name and not name.startswith(".") else None
    if path is None:
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(path, media_type=kind, headers={"Cache-Control": "no-cache"})


async def d3(request: Request) -> Response:
    path = web_file("node_modules/d3/dist/d3.min.js")
    if path is None:
        return PlainTextResponse("d3 is not installed: run `make up` (it runs npm ci in web/)", status_code=404)
    return FileResponse(path, media_type="text/javascript")


async def health(request: Request) -> Response:
    return PlainTextResponse("agentwatch alive")


async def ready(request: Request) -> Response:
    hub: Hub = request.state.hub
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await request.state.redis.ping()
    except Exception as exc:  # any failure to answer means not ready; say why
        return PlainTextResponse(f"Redis is not answering: {type(exc).__name__}", status_code=503)
    if not hub.ready.is_set():
        return PlainTextResponse("subscribing to Redis", status_code=503)
    return PlainTextResponse("ready")


async def stats(request: Request) -> Response:
    hub: Hub = request.state.hub
    return JSONResponse(
        {
            **hub.stats,
            "viewers": len(hub.viewers),
            "queued": sum(hub.fanout.behind(v) for v in hub.viewers),
            "seq": hub.last_seq,
            "epoch": hub.epoch,
            "tasks": len(asyncio.all_tasks()),
            "sources": await request.state.sources.current(),
        }
    )


def token_presented(ws: WebSocket) -> str:
    auth = ws.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return ws.query_params.get("token", "")


async def stream(ws: WebSocket) -> None:
    settings: Settings = ws.state.settings
    hub: Hub = ws.state.hub
    # Refused before accept: the client sees HTTP 403 (401 for a share link) and never a byte of the stream.
    if not origin_allowed(ws.headers.get("origin"), ws.state.hosts, settings.allowed_origins):
        await ws.close(code=CLOSE_POLICY)
        return
    share: Share | None = None
    if "share" in ws.query_params:
        # A share link is its own credential, for one session only; no other parameter widens it.
        try:
            share = verify(settings.token, ws.query_params["share"])
        except ShareRefused as refused:
            await _refuse_share(ws, hub, refused)
            return
    elif settings.token and not hmac.compare_digest(token_presented(ws).encode(), settings.token.encode()):
        await ws.close(code=CLOSE_POLICY)
        return
    if "replay" in ws.query_params:
        await _replay(ws, settings, ws.state.redis, hub, share)
        return
    since, epoch = _resume_point(ws)
    await ws.accept()
    viewer = Viewer()
    try:
        await hub.ready.wait()
        hub.add(viewer)
        writer = asyncio.create_task(write(ws, hub, viewer, settings, since, epoch, share))
        reader = asyncio.create_task(_read(ws))
        viewer.on_overflow = writer.cancel
        tasks = {writer, reader}
        if share is not None:
            tasks.add(asyncio.create_task(_expire(share)))
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        code, reason = 0, ""
        if viewer.fell_behind.is_set():
            code, reason = CLOSE_SLOW, viewer.why
        for task in done:
            if code or task.cancelled():
                continue
            exc = task.exception()
            if exc is None:
                code, reason = task.result()
            elif not isinstance(exc, DISCONNECTED):
                log.warning("a viewer's stream failed: %r", exc)
                code, reason = CLOSE_ERROR, "relay error; reconnect to resume"
        if code:
            log.info("closing a viewer (%d): %s", code, reason)
            # A stalled viewer cannot take even the close frame: bound the wait, then uvicorn drops the socket.
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError, TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await ws.close(code=code, reason=reason)
    finally:
        hub.remove(viewer)


async def replay_window(request: Request) -> Response:
    """What can be replayed: the window's bounds, events and failures per minute, and its markers."""
    settings: Settings = request.state.settings
    presented = request.headers.get("authorization", "")[7:].strip() or request.query_params.get("token", "")
    if settings.token and not hmac.compare_digest(presented.encode(), settings.token.encode()):
        return PlainTextResponse("a token is needed: Authorization: Bearer <token>, or ?token=\n", status_code=401)
    try:
        async with asyncio.timeout(5.0):
            body = await Window(request.state.redis, request.state.hub.keys).overview()
    except Exception as exc:  # Redis failed: say so, the page keeps its live view
        return JSONResponse({"error": f"Redis did not answer ({type(exc).__name__})"}, status_code=503)
    return JSONResponse(body)


async def _replay(ws: WebSocket, settings: Settings, redis: Redis, hub: Hub, share: Share | None) -> None:
    """A replay viewer: never in the hub, so live viewers never wait for it (relay/replay.py)."""
    await ws.accept()
    window = Window(redis, hub.keys)

    async def refuse(error: str, message: str, extra: dict[str, object] | None = None) -> None:
        body = {"type": "error", "error": error, "message": message, **(extra or {})}
        with contextlib.suppress(*DISCONNECTED):
            await ws.send_text(json.dumps(body))
            await ws.close(code=CLOSE_REPLAY_REFUSED, reason=message[:120])

    if share is not None:
        await refuse("replay_not_shared", "a share link shows its session live only; replay needs the relay's token")
        return
    if hub.stats["replays"] >= settings.max_replays:
        await refuse("replay_busy", f"{settings.max_replays} replays are running on this relay; try again soon")
        return
    try:
        speed = parse_speed(ws.query_params.get("speed"))
        seq, bounds = await window.resolve(parse_point(ws.query_params["replay"], int(time.time() * 1000)))
        state, epoch = await window.state_at(seq)
    except ValueError as exc:
        await refuse("bad_replay", str(exc))
        return
    except OutsideWindow as exc:
        await refuse("replay_outside_window", str(exc), {"window": exc.window})
        return
    player = Player(speed)
    hub.stats["replays"] += 1
    try:
        snapshot = {"type": "snapshot", "seq": seq, "epoch": epoch, "alive": list(state.alive().values())}
        snapshot["replay"] = {"speed": speed, "window": bounds}
        await ws.send_text(json.dumps(snapshot, separators=(",", ":")))
        sender = asyncio.create_task(play(window, seq, player, ws.send_text))
        reader = asyncio.create_task(_controls(ws, player))
        done, pending = await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(sender, reader, return_exceptions=True)
        for task in done:
            failure = None if task.cancelled() else task.exception()
            if failure is not None and not isinstance(failure, DISCONNECTED):
                log.warning("a replay failed: %r", failure)
    finally:
        hub.stats["replays"] -= 1


async def _controls(ws: WebSocket, player: Player) -> None:
    """A replay viewer's pause, play and speed messages; a bad one is answered, not fatal."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        error = player.control(message.get("text") or "")
        if error is not None:
            await ws.send_text(json.dumps({"type": "error", "error": "bad_control", "message": error}))


async def _refuse_share(ws: WebSocket, hub: Hub, exc: ShareRefused) -> None:
    hub.stats["shares_refused"] += 1
    if hub.stats["shares_refused"] <= 10 or hub.stats["shares_refused"] % 1000 == 0:
        log.warning("refused a share link (%s); %d so far", exc, hub.stats["shares_refused"])
    if exc.expired:
        # Well signed but late: accepted only to close with a code and reason a page can read (no data sent).
        await ws.accept()
        await ws.close(code=CLOSE_SHARE_EXPIRED, reason=exc.reason)
    elif "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(PlainTextResponse(f"{exc}\n", status_code=401))
    else:
        await ws.close(code=CLOSE_POLICY)  # a server without denial responses answers 403


async def _expire(share: Share) -> tuple[int, str]:
    await asyncio.sleep(max(0.0, share.expires - time.time()))
    return CLOSE_SHARE_EXPIRED, "share link expired"


def _resume_point(ws: WebSocket) -> tuple[int | None, str | None]:
    since, epoch = ws.query_params.get("since"), ws.query_params.get("epoch")
    if since is None or epoch is None or not since.isdigit() or len(since) > 18 or not 0 < len(epoch) <= 64:
        return None, None  # no resume asked, or a malformed one: a fresh snapshot serves either way
    return int(since), epoch


async def _read(ws: WebSocket) -> tuple[int, str]:
    """Viewers only listen: drain what they send and close the ones that flood."""
    window, count = asyncio.get_running_loop().time(), 0
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return 0, ""
        now = asyncio.get_running_loop().time()
        if now - window > 1.0:
            window, count = now, 0
        count += 1
        if count > MAX_FRAMES_PER_SECOND:
            return CLOSE_POLICY, "too many frames: viewers only listen"
