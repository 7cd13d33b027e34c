"""Real parts for tests: a redis-server on a free port, ingest and relay as subprocesses, the real hook script.

Nothing here touches the machine's shared Redis on 6379: every server is started here, on a free port,
and stopped by its pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from contract import safe_url

ROOT = Path(__file__).resolve().parent.parent
HOOK = ROOT / "hooks" / "agentwatch-hook.sh"
FIXTURE = ROOT / "tests" / "data" / "claude-code-session.jsonl"  # the shared fixture, kept beside the tests
PYTHON = sys.executable
# The system Chromium, as the browser tests and the page benchmark drive it: no downloads, no calls home.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


# Everything started here, so a failing test cannot leave a process behind (see the `reap` fixture).
STARTED: list[subprocess.Popen[bytes]] = []


def reap(since: int) -> None:
    """Kill (by pid) what was started after STARTED[since] and is still running."""
    for proc in STARTED[since:]:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    del STARTED[since:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: object, timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> None:
    """Poll a cheap check until it holds: for processes we cannot get an event from (ports, files)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class RedisServer:
    """A private redis-server: no persistence, its own port and directory, stopped by pid."""

    def __init__(self, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: run `make test` (it installs it) or apt-get install redis-server"
            )
        self.binary = binary
        self.port = port or free_port()
        self.extra = extra
        self.dir = tempfile.mkdtemp(prefix="agentwatch-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", self.dir, "--daemonize", "no", *self.extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        STARTED.append(self.proc)
        try:
            wait_for(self.ping, what=f"redis-server on port {self.port}")
        except TimeoutError:
            self.stop()
            raise

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # up, even when it wants a password
        except OSError:
            return False

    def cli(self, *args: str) -> str:
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10)
        return out.stdout

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Proc:
    """A subprocess whose stderr is collected line by line, so tests can await a log line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}, cwd=ROOT
        )
        STARTED.append(self.proc)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(stream,), daemon=True)
            for stream in (self.proc.stdout, self.proc.stderr)
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream: object) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, needle: str, timeout: float = 10.0, start: int = 0) -> str:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[start:]:
                    if needle in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not any(t.is_alive() for t in self._threads):
                    raise TimeoutError(f"{needle!r} not seen from {self.args[2:4]}; output:\n{self.output[-3000:]}")
                self._changed.wait(min(left, 0.2))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        for t in self._threads:
            t.join(2)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def start_ingest(redis_url: str, events_file: Path, prefix: str, *extra: str) -> Proc:
    args = [PYTHON, "-m", "ingest", "--redis-url", redis_url, "--events-file", str(events_file), "--prefix", prefix]
    proc = Proc(args + list(extra))
    proc.wait_line("ingest: reading")
    return proc


def start_relay(
    redis_url: str, prefix: str, port: int | None = None, *extra: str, env: dict[str, str] | None = None
) -> tuple[Proc, str]:
    port = port or free_port()
    args = [PYTHON, "-m", "relay", "--redis-url", redis_url, "--prefix", prefix, "--bind", f"127.0.0.1:{port}"]
    proc = Proc(args + list(extra), env=env)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: relay_ready(base) or proc.proc.poll() is not None, what=f"relay ready on {base}")
    if proc.proc.poll() is not None:
        raise RuntimeError(f"relay exited early:\n{proc.output}")
    return proc, base


def relay_ready(base: str) -> bool:
    """The relay at `base` answers /ready with 200 (subscribed, Redis answering)."""
    try:
        with urllib.request.urlopen(base + "/ready", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@dataclass
class Stack:
    redis_url: str
    events_file: Path
    prefix: str
    ingest: Proc
    relay: Proc
    base_url: str
    port: int
    relay_args: tuple[str, ...] = ()
    extra_procs: list[Proc] = field(default_factory=list)
    ingest_args: tuple[str, ...] = ()

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/stream"

    def restart_relay(self, before_start: object = None) -> None:
        """Stop the relay (SIGTERM, graceful) and start it again on the same port."""
        self.relay.stop()
        if before_start is not None:
            before_start()  # type: ignore[operator]
        self.relay, self.base_url = start_relay(self.redis_url, self.prefix, self.port, *self.relay_args)

    def restart_ingest(self, sig: int = signal.SIGTERM) -> None:
        self.ingest.stop(sig)
        self.ingest = start_ingest(self.redis_url, self.events_file, self.prefix, *self.ingest_args)


@contextlib.contextmanager
def running_stack(
    redis_url: str,
    events_file: Path,
    prefix: str | None = None,
    relay_args: tuple[str, ...] = (),
    ingest_args: tuple[str, ...] = (),
) -> Iterator[Stack]:
    """ingest + relay subprocesses on a real Redis, reading events_file from its start."""
    prefix = prefix or "t" + uuid.uuid4().hex[:10]
    events_file.parent.mkdir(parents=True, exist_ok=True)
    ingest = start_ingest(redis_url, events_file, prefix, "--from", "start", *ingest_args)
    port = free_port()
    try:
        relay, base = start_relay(redis_url, prefix, port, *relay_args)
    except BaseException:
        ingest.kill()
        raise
    stack = Stack(redis_url, events_file, prefix, ingest, relay, base, port, relay_args, ingest_args=ingest_args)
    try:
        yield stack
    finally:
        for proc in (stack.relay, stack.ingest, *stack.extra_procs):
            with contextlib.suppress(Exception):
                proc.stop(timeout=10)


def fixture_payloads() -> list[str]:
    """The fixture's raw payloads without `_received_at`, which stands for the stamp our hook adds."""
    out = []
    for line in FIXTURE.read_text().splitlines():
        payload = json.loads(line)
        payload.pop("_received_at", None)
        out.append(json.dumps(payload))
    return out


def run_hook(
    payload: str, events_file: Path, shell: str = "sh", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """One hook invocation, as Claude Code makes it: the payload on stdin."""
    full_env = {**os.environ, "AGENTWATCH_EVENTS_FILE": str(events_file), **(env or {})}
    return subprocess.run([shell, str(HOOK)], input=payload.encode(), env=full_env, capture_output=True, timeout=10)


def play_fixture(events_file: Path, upto: int | None = None, start: int = 0) -> int:
    """Feed fixture payloads [start:upto] through the real hook script into events_file; returns how many."""
    payloads = fixture_payloads()[start:upto]
    for payload in payloads:
        result = run_hook(payload, events_file)
        assert result.returncode == 0 and not result.stdout and not result.stderr, result
    return len(payloads)


def assert_bad_redis_url(command: str, url: str, expected: str) -> None:
    """`python -m <command> --redis-url <url>` refuses it in one line naming the flag and what was expected,
    exit 2, without showing the password (s3cret in the tests' URLs)."""
    result = subprocess.run(
        [PYTHON, "-m", command, "--redis-url", url], capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    assert result.returncode == 2
    assert f"--redis-url has value {safe_url(url)!r}: " in result.stderr and expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "s3cret" not in result.stderr
