"""Security: secrets redacted at ingest, only what the graph needs published, Redis auth and TLS, hostile frames."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
import websockets

from contract import Keys
from ingest.redact import RedactError, Redactor
from relay.settings import parse_hosts
from tests.stack import PYTHON, ROOT, RedisServer, play_fixture, running_stack, start_ingest, start_relay, wait_for
from tests.test_ingest import seq
from tests.viewer import next_message

reliability = pytest.mark.reliability

SECRETS = [
    "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345",
    "sk_live_51HxYzAbCdEfGh",
    "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "postgres://admin:hunter2@db.internal:5432/app",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    "DB_PASSWORD: 'correct-horse'",
]


@reliability(
    "Security",
    "secrets redacted at ingest",
    injected="API keys, tokens, passwords in URLs, AWS secrets, private keys",
    checked="each replaced by [redacted]; ordinary text kept",
)
@pytest.mark.parametrize("secret", SECRETS)
def test_default_patterns_redact_secrets(secret: str) -> None:
    out = Redactor()(f"run with {secret} now")
    assert "[redacted]" in out and out.startswith("run with ")
    for token in ("hunter2", "AbCdEfGh", "wJalrXUtnFEMI", "MIIEpAIBAAKCAQEA", "correct-horse", "eyJhbGci", "AKIAIOSF"):
        assert token not in out


def test_ordinary_text_is_left_alone() -> None:
    text = "Read src/checkout/token_parser.ts and run npm test -- --password-prompt=off"
    assert Redactor()(text) == text


@reliability(
    "Security",
    "redaction patterns are configurable",
    injected="a patterns file with an extra pattern, and one with a broken regex",
    checked="the extra pattern redacts; the broken one is refused with one line naming file, line and pattern",
)
def test_pattern_file_extends_the_defaults(tmp_path: Path) -> None:
    patterns = tmp_path / "patterns.txt"
    patterns.write_text("# our internal ticket tokens\nACME-[0-9]{6}\n")
    redact = Redactor.from_file(patterns)
    assert redact("ticket ACME-123456 and sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv") == "ticket [redacted] and [redacted]"
    patterns.write_text("ok\n([unclosed\n")
    with pytest.raises(RedactError) as err:
        Redactor.from_file(patterns)
    assert "pattern 2 '([unclosed'" in str(err.value) and str(patterns) in str(err.value)


def _published(server: RedisServer, prefix: str) -> str:
    return server.cli("--raw", "XRANGE", Keys(prefix).log, "-", "+") + server.cli("HGETALL", Keys(prefix).alive)


def _secret_session(events_file: Path) -> None:
    secret = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    payloads = [
        {"session_id": "s", "hook_event_name": "UserPromptSubmit", "prompt": f"deploy with key {secret} please"},
        {
            "session_id": "s",
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_use_id": "b1",
            "tool_input": {"command": f"curl -H 'Authorization: Bearer {secret}' https://api.example"},
        },
        {
            "session_id": "s",
            "hook_event_name": "PostToolUse",
            "tool_name": "Bash",
            "tool_use_id": "b1",
            "tool_input": {"command": "x"},
            "tool_response": {"stdout": "TOP-SECRET-OUTPUT"},
        },
        {
            "session_id": "s",
            "hook_event_name": "PreToolUse",
            "tool_name": "Agent",
            "tool_use_id": "a1",
            "tool_input": {"description": f"rotate {secret}", "prompt": "PRIVATE PROMPT TEXT", "subagent_type": "x"},
        },
        {"session_id": "s", "hook_event_name": "SubagentStart", "agent_id": "ag", "agent_type": "x"},
    ]
    events_file.parent.mkdir(parents=True, exist_ok=True)
    with open(events_file, "a") as f:
        f.writelines(json.dumps(p) + "\n" for p in payloads)


@reliability(
    "Security",
    "raw prompts and outputs stay home",
    injected="a session with a secret in the prompt, a Bash command, an agent description, and tool output",
    checked="by default no prompt, output or secret reaches Redis; with --publish-details prompts (a sub-agent's "
    "first line too) and commands appear, secrets still redacted",
)
@pytest.mark.parametrize("details", [False, True])
def test_only_what_the_graph_needs_is_published(
    redis_server: RedisServer, prefix: str, events_file: Path, details: bool
) -> None:
    _secret_session(events_file)
    extra = ("--publish-details",) if details else ()
    ingest = start_ingest(redis_server.url, events_file, prefix, "--from", "start", *extra)
    try:
        wait_for(lambda: seq(redis_server, prefix) >= 6, what="events")  # start, prompt, 2 tool_use, tool_done, spawn
    finally:
        ingest.stop()
    published = _published(redis_server, prefix)
    assert "AbCdEfGh" not in published and "TOP-SECRET-OUTPUT" not in published
    assert "rotate [redacted]" in published  # descriptions are labels the graph shows, scrubbed
    # What a sub-agent was asked (its prompt's first line, for the inspector) only with details.
    assert ('"asked":"PRIVATE PROMPT TEXT"' in published) is details
    assert ("PRIVATE PROMPT" in published) is details
    assert ("deploy with key [redacted] please" in published) is details
    assert ("curl -H 'Authorization: [redacted]' https://api.example" in published) is details


def _password_redis() -> RedisServer:
    server = RedisServer(extra=("--requirepass", "pw-9f3a2b"))
    server.start()
    return server


@reliability(
    "Security",
    "Redis with a password",
    injected="redis-server with requirepass; the URL carries the password",
    checked="ingest and relay work end to end; the password appears in no log line",
)
async def test_password_redis_end_to_end_and_never_logged(prefix: str, events_file: Path) -> None:
    server = _password_redis()
    url = f"redis://:pw-9f3a2b@127.0.0.1:{server.port}/0"
    try:
        with running_stack(url, events_file, prefix) as stack:
            async with websockets.connect(stack.ws_url) as ws:
                await next_message(ws)
                await asyncio.to_thread(play_fixture, events_file, 3)
                message = await next_message(ws)
                assert message["type"] == "event"
            logs = stack.ingest.output + stack.relay.output
        assert "pw-9f3a2b" not in logs and ":***@" in logs
    finally:
        server.close()


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.crt", "r.key", "r.csr", "r.crt"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "1",
        "-extfile",
        str(ext),
    )
    return ca, cert, key


@reliability(
    "Security",
    "Redis over TLS",
    injected="redis-server on a TLS port only, certificate from a test CA",
    checked="rediss:// with the CA verifies the server; ingest and relay work end to end",
)
async def test_tls_redis_end_to_end(tmp_path: Path, prefix: str, events_file: Path) -> None:
    ca, cert, key = _certificates(tmp_path)
    port = RedisServer().port
    server = RedisServer(
        port=port,
        extra=(
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--tls-ca-cert-file",
            str(ca),
            "--tls-auth-clients",
            "no",
        ),
    )
    server.ping = lambda: _tls_up(port)  # type: ignore[method-assign]
    server.start()
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}&ssl_cert_reqs=required"
    try:
        with running_stack(url, events_file, prefix) as stack:
            async with websockets.connect(stack.ws_url) as ws:
                await next_message(ws)
                await asyncio.to_thread(play_fixture, events_file, 3)
                message = await next_message(ws)
                assert message["type"] == "event" and message["data"]["type"] == "session_start"
    finally:
        server.close()


def _tls_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _raw_ws(port: int, extra_headers: str = "") -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    return sock, head


def _close_code(sock: socket.socket) -> int:
    """Read frames until the server's close frame; its first two payload bytes are the code."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection dropped without a close frame")
        data += chunk
        while len(data) >= 2:
            opcode, length = data[0] & 0x0F, data[1] & 0x7F
            offset = 2
            if length == 126:
                length, offset = int.from_bytes(data[2:4], "big"), 4
            elif length == 127:
                length, offset = int.from_bytes(data[2:10], "big"), 10
            if len(data) < offset + length:
                break
            if opcode == 0x8:
                return int.from_bytes(data[offset : offset + 2], "big")
            data = data[offset + length :]


def _masked_frame(payload: bytes, rsv1: bool = False) -> bytes:
    first = 0x81 | (0x40 if rsv1 else 0)
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    if len(payload) < 126:
        return bytes([first, 0x80 | len(payload)]) + mask + body
    return bytes([first, 0x80 | 126]) + len(payload).to_bytes(2, "big") + mask + body


@reliability(
    "Bad input",
    "compression bomb from a viewer",
    injected="a client offering permessage-deflate, then a compressed (RSV1) frame",
    checked="compression is never negotiated; the frame is refused with close 1002 before it is inflated; other viewers unaffected",
)
async def test_compressed_frames_are_refused(redis_server: RedisServer, events_file: Path) -> None:
    with running_stack(redis_server.url, events_file) as stack:
        async with websockets.connect(stack.ws_url) as calm:
            await calm.recv()
            sock, head = await asyncio.to_thread(
                _raw_ws, stack.port, "Sec-WebSocket-Extensions: permessage-deflate\r\n"
            )
            try:
                assert b"101" in head.split(b"\r\n")[0] and b"permessage-deflate" not in head.lower()
                sock.sendall(_masked_frame(b"\xf2\x48\xcd\xc9\xc9\x07\x00", rsv1=True))  # deflated "Hello"
                assert await asyncio.to_thread(_close_code, sock) == 1002
            finally:
                sock.close()
            assert calm.state.name == "OPEN"


@reliability(
    "Bad input",
    "10 MB message on the channel",
    injected="a 10 MB PUBLISH on the events channel by another client",
    checked="counted and dropped; the relay survives and sends no false reset",
)
async def test_huge_channel_message_is_dropped(redis_server: RedisServer, events_file: Path) -> None:
    with running_stack(redis_server.url, events_file) as stack:
        async with websockets.connect(stack.ws_url) as ws:
            snapshot = await next_message(ws)
            big = json.dumps(
                {"type": "event", "seq": snapshot["seq"] + 1, "epoch": snapshot["epoch"], "data": "x" * 10_000_000}
            )
            proc = await asyncio.create_subprocess_exec(
                "redis-cli",
                "-p",
                str(redis_server.port),
                "-x",
                "PUBLISH",
                Keys(stack.prefix).channel,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
            )
            await proc.communicate(big.encode())
            await asyncio.to_thread(play_fixture, events_file, 1)
            message = await next_message(ws)
            assert message["type"] == "event" and message["seq"] == snapshot["seq"] + 1
            assert message["data"]["type"] == "session_start"


# ---- DNS rebinding: the relay answers only for the host names it serves


def _request(port: int, host: str, path: str = "/", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One HTTP GET to the relay on 127.0.0.1 carrying the given Host, as a rebound page's request would."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _rebound_handshake(port: int, host: str, origin: str) -> bytes:
    """A raw WebSocket handshake with the given Host and Origin; everything the relay sends until it closes."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET /stream HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        data = b""
        with contextlib.suppress(TimeoutError):
            sock.settimeout(3)  # a relay that accepted would keep the socket open: stop reading after a while
            while chunk := sock.recv(65536):
                data += chunk
    return data


@reliability(
    "Security",
    "DNS rebinding: WebSocket",
    injected="a raw handshake with Host: evil.example and the matching Origin: http://evil.example",
    checked="HTTP 421 before accept: no 101, no snapshot",
)
def test_rebound_websocket_handshake_is_refused(redis_server: RedisServer, events_file: Path) -> None:
    with running_stack(redis_server.url, events_file) as stack:
        data = _rebound_handshake(stack.port, "evil.example", "http://evil.example")
        assert data.split(b"\r\n")[0] == b"HTTP/1.1 421 Misdirected Request"
        assert b"snapshot" not in data and b"alive" not in data
        # The same handshake under the relay's own name still opens.
        head = _rebound_handshake(stack.port, f"127.0.0.1:{stack.port}", stack.base_url)
        assert head.startswith(b"HTTP/1.1 101") and b'"type":"snapshot"' in head


@reliability(
    "Security",
    "DNS rebinding: HTTP",
    injected="GET /, /stream, /health, /ready and /stats with Host: evil.example (and evil.example:port)",
    checked="HTTP 421 for each, no page, no data",
)
def test_foreign_host_gets_421_on_every_route(redis_server: RedisServer, prefix: str) -> None:
    relay, base = start_relay(redis_server.url, prefix)
    port = int(base.rsplit(":", 1)[1])
    try:
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "localhost.", "LOCALHOST:1"):
            for path in ("/", "/stream", "/health", "/ready", "/stats", "/static/app.js"):
                status, body = _request(port, host, path)
                assert status == 421, (host, path, status)
                assert b"agentwatch" not in body and b"<html" not in body
    finally:
        relay.stop()


@reliability(
    "Security",
    "DNS rebinding: served names",
    injected="Host 127.0.0.1, localhost and [::1], each bare and with the relay's port, in any case",
    checked="each served (200); the same names with another port get 421",
)
def test_loopback_names_with_and_without_the_port_are_served(redis_server: RedisServer, prefix: str) -> None:
    relay, base = start_relay(redis_server.url, prefix)
    port = int(base.rsplit(":", 1)[1])
    try:
        for name in ("127.0.0.1", "localhost", "[::1]", "LocalHost"):
            assert _request(port, name, "/health")[0] == 200, name
            assert _request(port, f"{name}:{port}", "/health")[0] == 200, name
            assert _request(port, f"{name}:{port + 1}", "/health")[0] == 421, name
        assert _request(port, "localhost", "/")[0] == 200
    finally:
        relay.stop()


@reliability(
    "Security",
    "DNS rebinding: --allow-host",
    injected="--allow-host agentwatch.example, and AGENTWATCH_ALLOWED_HOSTS with two comma-separated names",
    checked="those names are served over HTTP and WebSocket (Origin of that name too); others still get 421",
)
async def test_allow_host_lets_that_name_in(redis_server: RedisServer, prefix: str) -> None:
    relay, base = start_relay(redis_server.url, prefix, None, "--allow-host", "agentwatch.example")
    port = int(base.rsplit(":", 1)[1])
    try:
        assert _request(port, "agentwatch.example", "/")[0] == 200
        assert _request(port, f"agentwatch.example:{port}", "/health")[0] == 200
        assert _request(port, "evil.example", "/")[0] == 421
        head = await asyncio.to_thread(_rebound_handshake, port, "agentwatch.example", "https://agentwatch.example")
        assert head.startswith(b"HTTP/1.1 101") and b'"type":"snapshot"' in head
    finally:
        relay.stop()
    env = {"AGENTWATCH_ALLOWED_HOSTS": "watch.example,team.example:8443"}
    relay, base = start_relay(redis_server.url, prefix, None, env=env)
    port = int(base.rsplit(":", 1)[1])
    try:
        assert _request(port, "watch.example", "/health")[0] == 200
        assert _request(port, "team.example:8443", "/health")[0] == 200
        assert _request(port, "team.example", "/health")[0] == 421  # given with a port: that port only
    finally:
        relay.stop()


@reliability(
    "Security",
    "Origin not compared with Host",
    injected="Host localhost:<relay port> (served) with Origin http://localhost:5173, another local page",
    checked="HTTP 403 before accept: an Origin must itself be a served name (or --allow-origin)",
)
def test_origin_is_checked_against_served_names_not_the_host_header(redis_server: RedisServer, prefix: str) -> None:
    relay, base = start_relay(redis_server.url, prefix)
    port = int(base.rsplit(":", 1)[1])
    try:
        refused = _rebound_handshake(port, f"localhost:{port}", "http://localhost:5173")
        assert refused.startswith(b"HTTP/1.1 403") and b"snapshot" not in refused
        opened = _rebound_handshake(port, f"localhost:{port}", f"http://localhost:{port}")
        assert opened.startswith(b"HTTP/1.1 101")
    finally:
        relay.stop()


@reliability(
    "Security",
    "DNS rebinding: log once per host",
    injected="five requests for evil.example, three for other.example, 300 random names",
    checked="one log line per distinct host, and at most 256 names logged however many arrive",
)
def test_refused_hosts_are_logged_once_each(redis_server: RedisServer, prefix: str) -> None:
    relay, base = start_relay(redis_server.url, prefix)
    port = int(base.rsplit(":", 1)[1])
    try:
        for host in ["evil.example"] * 5 + ["other.example"] * 3:
            assert _request(port, host, "/health")[0] == 421
        relay.wait_line("'other.example'")
        for i in range(300):
            _request(port, f"scan-{i}.example", "/health")
        relay.wait_line("no more are logged")
        _request(port, "after-the-cap.example", "/health")
        assert _request(port, f"127.0.0.1:{port}", "/health")[0] == 200
    finally:
        relay.stop()
    refused = [line for line in relay.lines if "refused a request for host" in line]
    assert sum("'evil.example'" in line for line in refused) == 1
    assert sum("'other.example'" in line for line in refused) == 1
    assert len(refused) <= 256 and not any("after-the-cap" in line for line in refused)


def test_allow_host_values_are_exact_names() -> None:
    assert parse_hosts(["Agentwatch.Example, fe80::1", "team.example:8443", ""]) == (
        "agentwatch.example",
        "[fe80::1]",
        "team.example:8443",
    )
    for bad in ("https://agentwatch.example", "*.example", "agentwatch.example/path", "two words"):
        result = subprocess.run(
            [PYTHON, "-m", "relay", "--allow-host", bad], capture_output=True, text=True, cwd=ROOT, timeout=30
        )
        assert result.returncode == 2 and "--allow-host has value" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
