"""WebSocket viewers in their own process: N connections that read every message and time the measured events.

A frame is one message or a JSON array of messages (a busy relay batches events); every message counts, and
every event whose tool_use_id is "lat_<pre_ns>_<post_ns>" (see appender.py) is measured, however many share
its frame: it was due at pre_ns (its tool_use) or post_ns (its tool_done), and its latency is time.time_ns()
at the frame's receipt minus that, on the same machine clock.

Two clients, chosen by "client":
- "websockets": the websockets library's asyncio client (the default; what a Python viewer would use).
- "raw": a minimal frame reader on an asyncio.Protocol (no per-message library work), for measuring how much
  a relay can deliver when the measuring process must not be the bottleneck.

Driven over stdin/stdout by the parent: it prints {"ready": n, "failed": f, "pending": p} once every viewer has
its snapshot or gave up, or after "connect_s" seconds with those still connecting counted as pending (a relay
past its capacity may not accept them all: the parent records that, it is not an error here); then on the line
"stop <from_ns> <to_ns>" prints the summary of events due in [from_ns, to_ns) and exits.

    python -m bench.viewers '{"urls": ["ws://127.0.0.1:8201/stream"], "n": 100, "client": "websockets"}'
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import struct
import sys
import time
from array import array
from typing import Any
from urllib.parse import urlsplit

from bench.common import percentile

# A frame is one message (a JSON object) or a JSON array of messages. Each message (event, snapshot, ping) has
# exactly one "epoch" key at its top level and an event's data has none, so counting it counts messages.
EPOCH = b'"epoch":'
SNAPSHOT_HEAD = b'{"type":"snapshot"'
MARK = b'"lat_'
DONE = b'"type":"tool_done"'
# A measured event's tool_use_id, and whether "duration_ms" follows it, which only a tool_done has (ingest
# writes tool, tool_use_id, duration_ms in that order): one C-level scan finds every one of a batch, both
# numbers at hand. A later layout is caught by LAYOUT_CHECKS and read the slow way.
MEASURED = re.compile(rb'"lat_(\d+)_(\d+)"(,"duration_ms")?')
LAYOUT_CHECKS = 2000  # frames whose tool_done count is checked against the scan's before it is trusted


class Tally:
    """What every viewer of this process saw, in one place (one process, one thread).

    `received` counts messages (events, snapshots, pings), `frames` the WebSocket frames that carried them.
    """

    def __init__(self) -> None:
        self.received = 0
        self.frames = 0
        self.bytes = 0
        self.due: array[int] = array("q")  # due time (ns) of each measured event received
        self.at: array[int] = array("q")  # and when it arrived
        self.closed: dict[str, int] = {}
        self.snapshots = 0
        self.failed = 0
        self.slow = False  # the scan missed a tool_done once: every frame is read element by element

    def frames_received(self, data: bytes, frames: int = 1) -> None:
        """Whole text frames' payloads, received now; bytes between them (frame headers) are ignored."""
        now = time.time_ns()
        self.frames += frames
        self.bytes += len(data)
        messages = data.count(EPOCH)
        self.received += messages
        if self.slow:
            dues = _dues_slowly(data)
        else:
            found = MEASURED.findall(data)
            dues = [int(post) if done else int(pre) for pre, post, done in found]
            if self.frames <= LAYOUT_CHECKS and sum(1 for f in found if f[2]) != data.count(DONE):
                self.slow = True
                dues = _dues_slowly(data)
        if messages > len(dues):  # something besides measured events: a snapshot, a ping, the set-up's events
            self.snapshots += data.count(SNAPSHOT_HEAD)
        if dues:
            self.due.extend(dues)
            self.at.extend(array("q", [now]) * len(dues))

    def close(self, code: int | None) -> None:
        key = str(code)
        self.closed[key] = self.closed.get(key, 0) + 1

    def summary(self, start_ns: int, end_ns: int) -> dict[str, Any]:
        due, at = self.due, self.at
        lat = [(at[i] - due[i]) / 1e6 for i in range(len(due)) if start_ns <= due[i] < end_ns]
        return {
            "received": self.received,
            "frames": self.frames,
            "bytes": self.bytes,
            "measured": len(lat),
            "p50_ms": round(percentile(lat, 50), 2),
            "p99_ms": round(percentile(lat, 99), 2),
            "p999_ms": round(percentile(lat, 99.9), 2),
            "max_ms": round(max(lat, default=float("nan")), 2),
            "closed": self.closed,
            "snapshots": self.snapshots,
            "slow_scan": self.slow,
        }


def _dues_slowly(data: bytes) -> list[int]:
    """Each marker's due time, a tool_done told by its type between the previous marker and this one."""
    dues = []
    previous = 0
    i = data.find(MARK)
    while i >= 0:
        j = data.find(b"_", i + 5)
        k = data.find(b'"', j + 1)
        done = data.find(DONE, previous, i) >= 0
        dues.append(int(data[j + 1 : k]) if done else int(data[i + 5 : j]))
        previous = k
        i = data.find(MARK, k)
    return dues


# ---- the websockets library client


async def ws_viewer(url: str, tally: Tally, ready: asyncio.Event, counter: list[int], n: int) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    code: int | None = None
    opened = False
    try:
        async with connect(url, max_size=None, compression=None, ping_interval=None, open_timeout=60) as ws:
            first = await ws.recv(decode=False)  # bytes: no UTF-8 decoding, the tally scans bytes
            tally.frames_received(first if isinstance(first, bytes) else first.encode())
            opened = True
            counter[0] += 1
            if counter[0] == n:
                ready.set()
            while True:
                data = await ws.recv(decode=False)
                tally.frames_received(data if isinstance(data, bytes) else data.encode())
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
        # Consecutive text frames go to the tally as one slice, headers between them included: counting and
        # scanning once per read instead of once per frame is what keeps this process cheap at 100k frames/s.
        pos, size = 0, len(buf)
        run_start, run_frames = -1, 0
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
            opcode = b0 & 0x0F
            if opcode == 1:
                if run_start < 0:
                    run_start = pos + head
                run_frames += 1
                pos += head + length
                continue
            if run_frames:
                self._text(bytes(buf[run_start:pos]), run_frames)
                run_start, run_frames = -1, 0
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            if opcode == 9 and self.transport is not None:
                self.transport.write(masked_frame(0xA, payload))
            elif opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                if self.transport is not None:
                    self.transport.write(masked_frame(0x8, payload[:2]))
                    self.transport.close()
                self._finish(code)
                return
        if run_frames:
            self._text(bytes(buf[run_start:pos]), run_frames)
        del buf[:pos]

    def _text(self, data: bytes, frames: int) -> None:
        self.tally.frames_received(data, frames)
        if self.first:
            self.first = False
            self.on_ready()

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
        if proto.first:  # closed before its snapshot: refused, not still connecting
            tally.failed += 1
            on_ready()
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), float(config.get("connect_s", 60)))
    done = counter[0]
    print(json.dumps({"ready": done - tally.failed, "failed": tally.failed, "pending": n - done}), flush=True)
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
