"""THE NAIVE DESIGN: a small model of the design agentwatch replaces, run side by side with it. Not product code.

What it keeps from the old design, on purpose:
- ingest polls the file every 200 ms (no file watch), and makes one Redis round trip per line: XADD to the log
  and PUBLISH to the channel for that line's events, no batching, no atomic checkpoint (the offset lives in
  memory only);
- the relay gives each viewer an unbounded asyncio.Queue and no slow-viewer policy: a viewer that stops reading
  makes its queue, and the relay's memory, grow for as long as it stays connected.

What it shares with agentwatch, so that only the design differs: the same Normalizer (the same events from
the same lines), the same envelope shape, Starlette on uvicorn with wsproto, redis-py with hiredis.

    python -m bench.naive ingest --redis-url URL --events-file PATH --prefix P
    python -m bench.naive relay --redis-url URL --prefix P --port N
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

POLL_S = 0.2


# ---- ingest


async def ingest(redis_url: str, events_file: Path, prefix: str) -> None:
    from redis.asyncio import Redis

    from contract import Keys
    from ingest.events import Normalizer
    from ingest.pricing import Pricing

    keys = Keys(prefix)
    redis = Redis.from_url(redis_url)
    normalizer = Normalizer(source="naive", pricing=Pricing.load(None))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await redis.hset(keys.meta, mapping={"seq": 0, "epoch": "naive"})
    print("naive ingest: polling", events_file, flush=True)
    offset, seq, lines = 0, 0, 0
    while not stop.is_set():
        try:
            with open(events_file, "rb") as f:  # noqa: ASYNC230 (the old design read synchronously)
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        end = data.rfind(b"\n") + 1
        offset += end
        for line in data[:end].splitlines():
            try:
                events = normalizer.feed(json.loads(line), int(time.time() * 1000))
            except Exception:
                continue
            pipe = redis.pipeline(transaction=False)
            for event in events:
                seq += 1
                envelope = json.dumps({"type": "event", "seq": seq, "epoch": "naive", "data": event})
                pipe.xadd(keys.log, {"envelope": envelope}, maxlen=10_000, approximate=True)
                pipe.publish(keys.channel, envelope)
            pipe.hincrby(keys.stats, "lines", 1)
            await pipe.execute()  # one round trip per line
            lines += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_S)
    await redis.aclose()


# ---- relay


def relay_app(redis_url: str, prefix: str) -> Any:
    from redis.asyncio import Redis
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    from contract import Keys

    keys = Keys(prefix)
    queues: set[asyncio.Queue[str]] = set()

    async def hub(redis: Redis) -> None:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(keys.channel)
        async for message in pubsub.listen():
            if message.get("type") == "message":
                text = message["data"].decode()
                for q in queues:
                    q.put_nowait(text)  # unbounded: never full, never dropped

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = Redis.from_url(redis_url)
        task = asyncio.create_task(hub(redis))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await redis.aclose()

    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        q: asyncio.Queue[str] = asyncio.Queue()
        queues.add(q)
        try:
            await ws.send_text('{"type":"snapshot","seq":0,"epoch":"naive","alive":[]}')
            while True:
                await ws.send_text(await q.get())
        except Exception:
            pass
        finally:
            queues.discard(q)

    async def health(request: Request) -> Response:
        return PlainTextResponse("naive alive")

    async def stats(request: Request) -> Response:
        return JSONResponse({"viewers": len(queues), "queued": sum(q.qsize() for q in queues)})

    routes = [Route("/health", health), Route("/stats", stats), WebSocketRoute("/stream", stream)]
    return Starlette(routes=routes, lifespan=lifespan)


def relay(redis_url: str, prefix: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(
        relay_app(redis_url, prefix),
        host="127.0.0.1",
        port=port,
        ws="wsproto",
        ws_per_message_deflate=False,
        ws_ping_interval=None,  # no keepalive: nothing ever closes a viewer that stopped reading
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    print(f"naive relay: serving on {port}", flush=True)
    uvicorn.Server(config).run()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.naive")
    parser.add_argument("part", choices=("ingest", "relay"))
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--events-file")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    sys.path.insert(0, os.getcwd())
    if args.part == "ingest":
        asyncio.run(ingest(args.redis_url, Path(args.events_file), args.prefix))
    else:
        relay(args.redis_url, args.prefix, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
