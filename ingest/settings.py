"""Ingest settings: a flag, else its environment variable, else the default."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contract import DEFAULT_PREFIX, SettingsError, duration_setting, float_setting, int_setting, size_setting

__all__ = ("DEFAULT_EVENTS_FILE", "Settings", "SettingsError", "add_arguments", "default_host", "from_args")

DEFAULT_EVENTS_FILE = "~/.claude/agentwatch/events.jsonl"  # the hook's default too
DEFAULT_RETENTION_BYTES = "256MiB"  # the replay window's ceiling on a real Redis
EMBEDDED_RETENTION_BYTES = "64MiB"  # ... and on the embedded one (`agentwatch up` without --redis-url)
# Source and host names go into Redis key names and the lease owner "host:pid:nonce": no ':' in a host, and
# nothing that could read as a glob or a cluster hash tag ({}) anywhere.
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
SOURCE_CHARS = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


def default_host(env: Mapping[str, str] = os.environ) -> str:
    """The machine's name: AGENTWATCH_HOST (a container passes the host's own name in), else gethostname()."""
    name = _NOT_NAME.sub("-", env.get("AGENTWATCH_HOST") or socket.gethostname()).strip("-.")
    return name[:64] or "unknown-host"


@dataclass(frozen=True)
class Settings:
    events_file: Path
    redis_url: str | None = None  # None: only meaningful for `agentwatch up` (embedded Redis)
    prefix: str = DEFAULT_PREFIX
    start_at: str = "end"  # where a first run (no checkpoint) starts: "end" is live, "start" reads history
    source: str = ""  # checkpoint name; derived from the host and the file path when empty
    host: str = ""  # this machine's name; default_host() when empty
    lease_ttl_s: float = 30.0  # a source whose owner has not renewed for this long is ended (its agents lost)
    stream_cap: int = 0  # an extra cap on the log's entries (0: none; the window is cut by time and bytes)
    retention_s: float = 24 * 3600.0  # how far back replay reaches
    retention_max_bytes: int = 256 << 20  # the log and keyframes never take more; it wins over retention_s
    keyframe_events: int = 2000  # a keyframe every this many envelopes...
    keyframe_interval_s: float = 60.0  # ...or this much time, whichever comes first
    max_line_bytes: int = 1 << 20
    batch_lines: int = 2000
    idle_timeout_s: float = 1800.0
    poll_interval_s: float = 1.0
    watch_step_ms: int = 2  # a new line waits 1-2 steps before it is read; each step is a wake-up while idle (bench)
    pricing_file: Path | None = None
    redact_patterns_file: Path | None = None
    publish_details: bool = False  # opt-in: prompts and a short summary of each tool input, redacted
    transcripts: bool = True  # follow the transcripts the payloads name, for live tokens and cost per agent

    @property
    def host_name(self) -> str:
        return self.host or default_host()

    @property
    def source_name(self) -> str:
        """`<host>:<file name>-<hash of host and path>`: the same path on two machines is two sources."""
        if self.source:
            return self.source
        host = self.host_name
        digest = hashlib.sha256(f"{host}\n{self.events_file}".encode()).hexdigest()[:12]
        return f"{host}:{_NOT_NAME.sub('-', self.events_file.name)[:64]}-{digest}"


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str] = os.environ) -> None:
    group = parser.add_argument_group("ingest")
    group.add_argument(
        "--events-file",
        default=env.get("AGENTWATCH_EVENTS_FILE", DEFAULT_EVENTS_FILE),
        help="JSONL file the hook appends to (AGENTWATCH_EVENTS_FILE; default %(default)s)",
    )
    group.add_argument(
        "--from",
        dest="start_at",
        default=env.get("AGENTWATCH_FROM", "end"),
        help="first run without a checkpoint: 'end' follows new lines only, 'start' reads the history too",
    )
    group.add_argument(
        "--source",
        default=env.get("AGENTWATCH_SOURCE", ""),
        help="name of this file's checkpoint and lease (AGENTWATCH_SOURCE; default <host>:<file name>-<hash>)",
    )
    group.add_argument(
        "--lease-ttl",
        default=env.get("AGENTWATCH_LEASE_TTL", "30"),
        help="seconds a lease lives without renewal (every third of it); after it the source's agents end as lost",
    )
    group.add_argument(
        "--stream-cap",
        default=env.get("AGENTWATCH_STREAM_CAP", "0"),
        help="at most this many envelopes in the log (AGENTWATCH_STREAM_CAP; default 0: no count cap)",
    )
    group.add_argument(
        "--retention",
        default=env.get("AGENTWATCH_RETENTION", "24h"),
        help="how far back replay reaches: envelopes and keyframes older are trimmed (AGENTWATCH_RETENTION; "
        "default %(default)s)",
    )
    group.add_argument(
        "--retention-max-bytes",
        default=env.get("AGENTWATCH_RETENTION_MAX_BYTES", ""),
        help="memory ceiling of the log and keyframes; when reached it wins over --retention and is reported "
        f"(AGENTWATCH_RETENTION_MAX_BYTES; default {DEFAULT_RETENTION_BYTES}, {EMBEDDED_RETENTION_BYTES} on the "
        "embedded Redis; 0: none)",
    )
    group.add_argument(
        "--keyframe-every",
        default=env.get("AGENTWATCH_KEYFRAME_EVERY", "2000"),
        help="store the alive set every this many envelopes (default %(default)s)",
    )
    group.add_argument(
        "--keyframe-interval",
        default=env.get("AGENTWATCH_KEYFRAME_INTERVAL", "60s"),
        help="...or at least this often while events come (default %(default)s)",
    )
    group.add_argument(
        "--idle-timeout",
        default=env.get("AGENTWATCH_IDLE_TIMEOUT", "1800"),
        help="seconds without activity before an agent is ended as lost (AGENTWATCH_IDLE_TIMEOUT)",
    )
    group.add_argument("--max-line-bytes", default=env.get("AGENTWATCH_MAX_LINE_BYTES_INGEST", str(1 << 20)))
    group.add_argument(
        "--pricing", default=env.get("AGENTWATCH_PRICING", ""), help="JSON pricing table replacing the bundled one"
    )
    group.add_argument(
        "--poll-interval", default=env.get("AGENTWATCH_POLL_INTERVAL", "1.0"), help="safety poll, seconds"
    )
    group.add_argument(
        "--redact-patterns",
        default=env.get("AGENTWATCH_REDACT_PATTERNS", ""),
        help="file of extra regular expressions (one per line) whose matches are replaced by [redacted]",
    )
    group.add_argument(
        "--publish-details",
        action="store_true",
        default=env.get("AGENTWATCH_PUBLISH_DETAILS") == "1",
        help="also publish prompts and a short, redacted summary of each tool input (off: only what the graph needs)",
    )
    group.add_argument(
        "--no-transcripts",
        dest="transcripts",
        action="store_false",
        default=env.get("AGENTWATCH_TRANSCRIPTS", "1") != "0",
        help="do not read Claude Code's transcript files (AGENTWATCH_TRANSCRIPTS=0): sub-agents then show only "
        "the Agent tool's cost, a floor",
    )


def from_args(ns: argparse.Namespace, redis_url: str | None, prefix: str) -> Settings:
    if ns.start_at not in ("start", "end"):
        raise SettingsError(f"--from has value {ns.start_at!r}: expected 'start' or 'end'")
    events_file = Path(os.path.expanduser(ns.events_file))
    if not ns.events_file or events_file.is_dir():
        raise SettingsError(f"--events-file has value {ns.events_file!r}: expected a file path, not a directory")
    if ns.source and not SOURCE_CHARS.fullmatch(ns.source):
        raise SettingsError(f"--source has value {ns.source!r}: expected 1 to 200 letters, digits, '_', '-', '.', ':'")
    pricing = Path(os.path.expanduser(ns.pricing)) if ns.pricing else None
    return Settings(
        events_file=events_file.absolute(),
        redis_url=redis_url,
        prefix=prefix,
        start_at=ns.start_at,
        source=ns.source,
        host=default_host(),
        lease_ttl_s=float_setting("--lease-ttl", ns.lease_ttl, 1.0),
        stream_cap=_stream_cap(ns.stream_cap),
        retention_s=duration_setting("--retention", ns.retention, 60.0),
        retention_max_bytes=size_setting(
            "--retention-max-bytes",
            # The embedded Redis lives in this process, where each entry costs several times its bytes.
            ns.retention_max_bytes or (DEFAULT_RETENTION_BYTES if redis_url else EMBEDDED_RETENTION_BYTES),
            0,
        ),
        keyframe_events=int_setting("--keyframe-every", ns.keyframe_every, 1),
        keyframe_interval_s=duration_setting("--keyframe-interval", ns.keyframe_interval, 1.0),
        max_line_bytes=int_setting("--max-line-bytes", ns.max_line_bytes, 1024),
        idle_timeout_s=float_setting("--idle-timeout", ns.idle_timeout, 1.0),
        poll_interval_s=float_setting("--poll-interval", ns.poll_interval, 0.05),
        pricing_file=pricing,
        redact_patterns_file=Path(os.path.expanduser(ns.redact_patterns)) if ns.redact_patterns else None,
        publish_details=ns.publish_details,
        transcripts=ns.transcripts,
    )


def _stream_cap(value: str) -> int:
    """0 (no count cap), or at least 100 entries."""
    return 0 if value.strip() == "0" else int_setting("--stream-cap", value, 100)
