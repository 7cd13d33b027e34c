"""WebSocket viewers in their own process: N connections that read every message and time the measured events.

An event whose tool_use_id is "lat_<pre_ns>_<post_ns>" (see appender.py) was due at pre_ns (its tool_use) or
post_ns (its tool_done); its latency is time.time_ns() at receipt minus that, on the same machine clock.

Two clients, chosen by "client":
- "websockets": the websockets library's asyncio client (the default; what a Python viewer would use).
- "raw": a minimal frame reader on an asyncio.Protocol (no per-message library work), for measuring how much
  a relay can deliver when the measuring process must not be the bottleneck.

Driven over stdin/stdout by the parent: it prints {"ready": n} once every viewer has its snapshot, then on the
line "stop <from_ns> <to_ns>" prints the summary of events due in [from_ns, to_ns) and exits.

    python -m bench.viewers '{"url": "ws://127.0.0.1:8201/stream", "n": 100, "client": "websockets"}'
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import sys
import time
from array import array
from typing import Any
from urllib.parse import urlsplit

from bench.common import percentile

MARK = '"lat_'
MARK_B = b'"lat_'
DONE = '"type":"tool_done"'
DONE_B = b'"type":"tool_done"'


class Tally:
    """What every viewer of this process saw, in one place (one process, one thread)."""

    def __init__(self) -> None:
        self.received = 0
        self.due: array[int] = array("q")  # due time (ns) of each measured event received
        self.lat_us: array[int] = array("q")
        self.closed: dict[str, int] = {}
        self.gaps = 0
        self.snapshots = 0
        self.failed = 0

    def message(self, text: str) -> None:
        now = time.time_ns()
        self.received += 1
        i = text.find(MARK)
        if i < 0:
            if text.startswith('{"type":"snapshot"'):
                self.snapshots += 1
            return
        j = text.find("_", i + 5)
        k = text.find('"', j + 1)
        due = int(text[j + 1 : k]) if DONE in text else int(text[i + 5 : j])
        self.due.append(due)
        self.lat_us.append((now - due) // 1000)

    def message_bytes(self, data: bytes) -> None:
        now = time.time_ns()
        self.received += 1
        i = data.find(MARK_B)
        if i < 0:
            if data.startswith(b'{"type":"snapshot"'):
                self.snapshots += 1
            return
        j = data.find(b"_", i + 5)
        k = data.find(b'"', j + 1)
        due = int(data[j + 1 : k]) if DONE_B in data else int(data[i + 5 : j])
        self.due.append(due)
        self.lat_us.append((now - due) // 1000)

    def close(self, code: int | None) -> None:
        key = str(code)
        self.closed[key] = self.closed.get(key, 0) + 1

    def summary(self, start_ns: int, end_ns: int) -> dict[str, Any]:
        lat = [self.lat_us[i] / 1000 for i in range(len(self.due)) if start_ns <= self.due[i] < end_ns]
        return {
            "received": self.received,
            "measured": len(lat),
            "p50_ms": round(percentile(lat, 50), 2),
            "p99_ms": round(percentile(lat, 99), 2),
            "p999_ms": round(percentile(lat, 99.9), 2),
            "max_ms": round(max(lat, default=float("nan")), 2),
            "closed": self.closed,
            "snapshots": self.snapshots,
        }


# ---- the websockets library client


async def ws_viewer(url: str, tally: Tally, ready: asyncio.Event, counter: list[int], n: int) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    code: int | None = None
    opened = False
    try:
        async with connect(url, max_size=None, compression=None, ping_interval=None, open_timeout=60) as ws:
            first = await ws.recv()
            tally.message(first if isinstance(first, str) else first.decode())
            opened = True
            counter[0] += 1
            if counter[0] == n:
                ready.set()
            while True:
                text = await ws.recv()
                tally.message(text if isinstance(text, str) else text.decode())
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else None
    except (TimeoutError, OSError, InvalidStatus) as exc:
        code = -1
        print(f"viewer failed: {exc!r}", file=sys.stderr)
    if not opened:
        tally.failed += 1
        counter[0] += 1
        if counter[0] == n:
            ready.set()
    tally.close(code)


# ---- the raw client


def handshake(host: str, port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


class RawViewer(asyncio.Protocol):
    def __init__(self, request: bytes, tally: Tally, on_ready: Any) -> None:
        self.request = request
        self.tally = tally
        self.on_ready = on_ready
        self.buf = bytearray()
        self.upgraded = False
        self.first = True
        self.done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self._finish(-int(buf[9:12] or b"1"))
                return
            del buf[: end + 4]
            self.upgraded = True
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if size - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            opcode = b0 & 0x0F
            if opcode == 1:
                self.tally.message_bytes(payload)
                if self.first:
                    self.first = False
                    self.on_ready()
            elif opcode == 9 and self.transport is not None:
                self.transport.write(masked_frame(0xA, payload))
            elif opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                if self.transport is not None:
                    self.transport.write(masked_frame(0x8, payload[:2]))
                    self.transport.close()
                self._finish(code)
                return
        del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(None)

    def _finish(self, code: int | None) -> None:
        if not self.done.done():
            self.done.set_result(code)
            if self.transport is not None:
                self.transport.close()


async def raw_viewer(url: str, tally: Tally, ready: asyncio.Event, counter: list[int], n: int) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")

    def on_ready() -> None:
        counter[0] += 1
        if counter[0] == n:
            ready.set()

    loop = asyncio.get_running_loop()
    try:
        _, proto = await loop.create_connection(
            lambda: RawViewer(handshake(host, port, path), tally, on_ready), host, port
        )
        code = await proto.done
    except OSError as exc:
        code = -1
        tally.failed += 1
        print(f"viewer failed: {exc!r}", file=sys.stderr)
        on_ready()
    tally.close(code)


# ---- the process


async def amain(config: dict[str, Any]) -> None:
    urls: list[str] = config["urls"] if "urls" in config else [config["url"]]
    n = int(config["n"])
    client = raw_viewer if config.get("client") == "raw" else ws_viewer
    tally = Tally()
    ready = asyncio.Event()
    counter = [0]
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(client(urls[i % len(urls)], tally, ready, counter, n)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # do not overflow the listen backlog
    if n:
        await asyncio.wait_for(ready.wait(), 120)
    print(json.dumps({"ready": counter[0] - tally.failed, "failed": tally.failed}), flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    parts = line.split()
    start_ns, end_ns = (int(parts[1]), int(parts[2])) if len(parts) == 3 else (0, 1 << 62)
    summary = tally.summary(start_ns, end_ns)
    summary["still_open"] = sum(1 for t in tasks if not t.done())
    print(json.dumps(summary), flush=True)
    os._exit(0)  # the parent has what it needs: no closing handshakes to wait for


def main(argv: list[str]) -> int:
    asyncio.run(amain(json.loads(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
