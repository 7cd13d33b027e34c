"""The contract between ingest (the only writer) and relay (a reader): Redis names and message shapes.

ingest and relay never import each other; both read this module, and tests/test_contract.py pins it.
Every value stored in Redis is plain JSON text, so `redis-cli` can read all of it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, NotRequired, TypedDict

import msgspec

DEFAULT_PREFIX = "agentwatch"

# The agent id of a session's own thread: Claude Code sends no agent_id there.
MAIN_AGENT = "main"

EVENT_TYPES = frozenset(
    {
        "session_start",
        "session_end",
        "prompt",
        "agent_spawn",
        "agent_update",
        "agent_done",
        "tool_use",
        "tool_done",
        "tool_fail",
        "skill_use",
        "notification",
        "permission_request",
        "stop_fail",
        "compact_start",
        "compact_done",
    }
)
OUTCOMES = frozenset({"success", "failure", "partial", "unknown", "lost"})

# The Claude Code hook events the hook is registered for (`agentwatch hooks install`) and ingest reads.
HOOK_EVENTS = (
    "SessionStart",
    "SessionEnd",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "SubagentStart",
    "SubagentStop",
    "Stop",
    "Notification",
    "PermissionRequest",
    "StopFailure",
    "PreCompact",
    "PostCompact",
)

# Fields of the meta hash.
META_SEQ = "seq"  # last seq handed out; INCR'd only inside ingest's commit script
META_EPOCH = "epoch"  # random id set once; a new one means Redis lost its state and old seqs mean nothing
# The master_replid of the Redis the last commit ran on. Redis makes a new one when a replica is promoted or
# a master restarts: acknowledged writes may be gone and seqs may repeat, so the commit starts a new epoch.
META_REPLID = "replid"
# The one field of each stream entry; the entry id is "<seq>-0" so XRANGE can address seqs directly.
LOG_FIELD = "envelope"
# Keyframes (the alive set at a seq, written inside the commit that reaches that seq): meta fields of the last.
META_KEYFRAME_SEQ = "kf_seq"
META_KEYFRAME_TS = "kf_ts"
META_KEYFRAME_EPOCH = "kf_epoch"  # the epoch the keyframes belong to: a new epoch starts the window again
META_TRIMMED = "trimmed"  # how the retained window was last cut: "time" or "bytes" (the ceiling won)
META_TRIMMED_AT = "trimmed_at"  # Redis time (ms) of that cut
MARK_FIELD = "mark"  # the one field of a marks entry: JSON {type, ts, session_id, agent_id, ...}


CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def is_cluster_url(url: str | None) -> bool:
    """Whether a --redis-url names a Redis Cluster (None: the embedded Redis, never one)."""
    return url is not None and url.startswith(CLUSTER_SCHEMES)


@dataclass(frozen=True)
class Keys:
    """Every Redis name agentwatch uses, under one prefix so several teams can share a Redis.

    On a Redis Cluster (`cluster=True`) the prefix is wrapped in a hash tag, `{agentwatch}:alive`: only the
    text in braces is hashed, so every name of a prefix is in one slot, as the scripts that touch several of
    them at once (and SPUBLISH from inside them) require. A single Redis and Sentinel keep `agentwatch:alive`.
    """

    prefix: str = DEFAULT_PREFIX
    cluster: bool = False

    @classmethod
    def for_url(cls, prefix: str, redis_url: str | None) -> Keys:
        """The names for a --redis-url: hash-tagged when it is redis+cluster:// or rediss+cluster://."""
        return cls(prefix, cluster=is_cluster_url(redis_url))

    @property
    def namespace(self) -> str:
        """What every name starts with: the prefix, or on a Cluster the prefix as a hash tag."""
        return f"{{{self.prefix}}}" if self.cluster else self.prefix

    @property
    def publish(self) -> str:
        """The command the scripts publish with: SPUBLISH on a Cluster keeps each message in the prefix's shard
        (PUBLISH would cross the whole cluster bus); the relay subscribes to match."""
        return "SPUBLISH" if self.cluster else "PUBLISH"

    @property
    def channel(self) -> str:
        """Pub/sub channel (a shard channel on a Cluster): one envelope per event (at-most-once; the log below
        fills gaps)."""
        return f"{self.namespace}:events"

    @property
    def alive(self) -> str:
        """Hash of the agents alive now: field "<session_id>/<agent_id>", value an AliveRecord."""
        return f"{self.namespace}:alive"

    @property
    def meta(self) -> str:
        """Hash with META_SEQ and META_EPOCH."""
        return f"{self.namespace}:meta"

    @property
    def log(self) -> str:
        """Stream of the envelopes (entry id "<seq>-0") of the retained window: gap filling, resume and replay."""
        return f"{self.namespace}:log"

    @property
    def keyframes(self) -> str:
        """Stream of keyframes, entry id "<seq>-1" (seq 0 is an epoch's empty start; 0-0 is no stream id),
        fields `ts` (Redis ms), `epoch` and `alive` (a JSON object: alive field -> record): exactly
        `HGETALL {p}:alive` after that seq. Replay starts from the one at or before the asked seq."""
        return f"{self.namespace}:keyframes"

    @property
    def keyframe_times(self) -> str:
        """Sorted set: member a keyframe's seq, score its Redis time (ms): finds the keyframe before a time."""
        return f"{self.namespace}:keyframe_times"

    @property
    def marks(self) -> str:
        """Stream of the timeline's markers, entry id "<seq>-0" of the event: session starts and ends, failures."""
        return f"{self.namespace}:marks"

    @property
    def timeline(self) -> str:
        """Hash of events per minute: "<minute>:e" events, "<minute>:f" failures (minute = ts // 60000)."""
        return f"{self.namespace}:timeline"

    @property
    def stats(self) -> str:
        """Hash of counters: lines read, events published, rejected lines by reason."""
        return f"{self.namespace}:stats"

    def checkpoint(self, source: str) -> str:
        """Hash of one ingest source: file identity, byte offset, the normalizer state at that offset, and the
        source's lease (SOURCE_FIELDS: owner, gen, expires, ...)."""
        return f"{self.namespace}:ingest:{source}"

    @property
    def leases(self) -> str:
        """Sorted set: source -> the Redis time (ms) its lease expires; past it, any ingest ends its agents."""
        return f"{self.namespace}:leases"

    @property
    def sources(self) -> str:
        """Set of every source that ever took a lease: what `agentwatch status` and /stats list."""
        return f"{self.namespace}:sources"


_encode = msgspec.json.Encoder().encode
# The fallback for a string msgspec cannot write as UTF-8 (a lone surrogate a payload escaped): it escapes it.
_escaping = json.JSONEncoder(separators=(",", ":")).encode


_decode = msgspec.json.Decoder().decode


def parse_json(text: str | bytes) -> Any:
    """JSON as Python values, with msgspec; what it refuses (a lone surrogate escape) by the standard library,
    which raises ValueError for text that is not JSON."""
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


def compact_json(value: Any) -> str:
    """JSON without spaces, UTF-8 as is (msgspec: several times the standard library's speed per event)."""
    try:
        return _encode(value).decode()
    except UnicodeEncodeError:
        return _escaping(value)


def alive_field(session_id: str, agent_id: str) -> str:
    return f"{session_id}/{agent_id}"


class Event(TypedDict):
    """The `data` of an event envelope. Optional fields appear where the type needs them."""

    type: str
    ts: int
    session_id: str
    agent_id: str
    tool: NotRequired[str]
    tool_use_id: NotRequired[str | None]
    parent_id: NotRequired[str | None]
    agent_type: NotRequired[str]
    model: NotRequired[str | None]
    description: NotRequired[str | None]
    outcome: NotRequired[str]
    duration_ms: NotRequired[int | None]
    tokens: NotRequired[int | None]
    cost_usd: NotRequired[float | None]


# The fields of an alive record that viewers hold: every change to one of them is published (agent_spawn and
# session_start carry all of them, agent_update the changed ones), so the stream and the alive hash agree.
VIEW_FIELDS = (
    "parent_id",
    "agent_type",
    "model",
    "description",
    "tool_use_id",
    "background",
    "link",
    "provisional",
    "project",
    "waiting",
    "waiting_tool",
    "waiting_since",
    "waited_ms",
    "compacting",
    "asked",
    "usage",
    "sub_usage",
)


class UsageView(TypedDict):
    """Tokens and cost of responses counted once each (ingest/usage.py)."""

    input: int  # uncached input tokens
    output: int
    cache_read: int
    cache_write: int
    messages: int  # API responses counted
    cost_usd: float | None  # of the priced responses
    unpriced: bool  # some response had a model the price table does not know
    basis: NotRequired[Literal["transcript", "floor"]]  # floor: the Agent tool's final request only


class AliveRecord(TypedDict):
    """A value of the alive hash: the ids, the VIEW_FIELDS, and ingest's own bookkeeping."""

    session_id: str
    agent_id: str
    parent_id: str | None
    agent_type: str
    model: str | None
    description: str | None
    tool_use_id: str | None
    background: bool
    link: Literal["confirmed", "inferred", "none"]
    provisional: bool  # agent_id is a stand-in (the spawn call's tool_use_id) until Claude Code's id is known
    project: str | None
    waiting: Literal["permission", "input"] | None
    waiting_tool: str | None
    waiting_since: int | None
    waited_ms: int
    compacting: bool
    asked: str | None  # what it was asked, first line: only with --publish-details
    usage: UsageView | None  # its own tokens and cost
    sub_usage: UsageView | None  # its ended descendants' (and inline sub-agent turns)
    spawned_at: int
    last_seen: int
    tool_count: int
    tools: dict[str, int]  # calls by tool; viewers count on from tool_use / skill_use
    prompts: int  # the orchestrator's; viewers count on from prompt
    agents_total: int  # the orchestrator's; viewers count on from agent_spawn (less merged_into)
    source: str


class EventMessage(TypedDict):
    type: Literal["event"]
    seq: int
    epoch: str
    data: Event


class SnapshotMessage(TypedDict):
    type: Literal["snapshot"]
    seq: int
    epoch: str
    alive: list[dict[str, Any]]
    reset: NotRequired[bool]


class PingMessage(TypedDict):
    type: Literal["ping"]
    seq: int
    epoch: str


def envelope_prefix(seq: int, epoch: str) -> str:
    """The envelope is built by string concatenation inside the commit script; this is its exact head."""
    return f'{{"type":"event","seq":{seq},"epoch":"{epoch}","data":'


# ---- sources: one per events file, each with a lease (ingest/lease.py); read by `agentwatch status` and /stats


# ---- settings both sides accept the same way


class SettingsError(ValueError):
    """A bad flag or environment value; the message names it and says what was expected."""


def int_setting(flag: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise SettingsError(f"{flag} has value {value!r}: expected an integer >= {minimum}")
    return number


def float_setting(flag: str, value: str, minimum: float) -> float:
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number >= minimum:  # also refuses NaN
        raise SettingsError(f"{flag} has value {value!r}: expected a number >= {minimum}")
    return number


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 10**6,
    "mb": 10**6,
    "mib": 1 << 20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 1 << 30,
}


def duration_setting(flag: str, value: str, minimum: float = 0.0) -> float:
    """Seconds from "90", "90s", "15m", "24h" or "7d"."""
    text = value.strip().lower()
    unit = text[-1:] if text[-1:] in _DURATION_UNITS else "s"
    number = text[:-1] if text[-1:] in _DURATION_UNITS else text
    try:
        seconds = float(number) * _DURATION_UNITS[unit]
    except ValueError:
        seconds = float("nan")
    if not seconds >= minimum:
        raise SettingsError(f"{flag} has value {value!r}: expected a duration such as 90s, 15m, 24h or 7d")
    return seconds


def size_setting(flag: str, value: str, minimum: int = 0) -> int:
    """Bytes from "1048576", "512MB", "256MiB" or "2GiB"."""
    text = value.strip().lower().replace(" ", "")
    digits = text.rstrip("abgikm")
    unit = text[len(digits) :]
    try:
        size = int(float(digits) * _SIZE_UNITS[unit])
    except (ValueError, KeyError):
        size = minimum - 1
    if size < minimum:
        raise SettingsError(f"{flag} has value {value!r}: expected a size such as 256MiB, 512MB or 2GiB")
    return size


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def add_connection_arguments(parser: argparse.ArgumentParser, default_redis: str | None, redis_help: str) -> None:
    """--redis-url and --prefix, with their environment variables, the same for every command."""
    parser.add_argument("--redis-url", default=os.environ.get("AGENTWATCH_REDIS_URL") or default_redis, help=redis_help)
    parser.add_argument(
        "--prefix",
        default=os.environ.get("AGENTWATCH_PREFIX", DEFAULT_PREFIX),
        help="prefix of every Redis name (AGENTWATCH_PREFIX; default %(default)s)",
    )


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it logs every change at INFO


def check_connection(redis_url: str | None, prefix: str) -> None:
    """The flags every part takes: --redis-url (None: an embedded Redis) and --prefix."""
    if redis_url is not None and (problem := redis_url_problem(redis_url)):
        raise SettingsError(f"--redis-url has value {safe_url(redis_url)!r}: {problem}")
    if problem := prefix_problem(prefix):
        raise SettingsError(f"--prefix has value {prefix!r}: {problem}")


REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "rediss+sentinel://", *CLUSTER_SCHEMES)
PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:")


def redis_url_problem(url: str) -> str | None:
    """Why a Redis URL cannot work, in words for a one-line error; None when it looks usable."""
    if not url.startswith(REDIS_SCHEMES):
        return (
            "expected redis://host:port/db, rediss:// (TLS), unix:///path "
            "or redis+sentinel://host:port[,host:port...]/service[/db], or redis+cluster://host:port[,host:port...]"
        )
    if url.startswith(CLUSTER_SCHEMES):
        from .connect import cluster_url_problem

        return cluster_url_problem(url)
    if url.startswith(REDIS_SCHEMES[3:5]):
        from .connect import sentinel_url_problem

        return sentinel_url_problem(url)
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        return f"expected a valid URL ({exc})"
    if not url.startswith("unix://") and not parts.hostname:
        return "expected a host, e.g. redis://127.0.0.1:6379/0"
    return None


def prefix_problem(prefix: str) -> str | None:
    # No '{' or '}': on a Cluster the prefix itself becomes the hash tag, and braces in it would move the tag.
    if not prefix or len(prefix) > 64 or not set(prefix) <= PREFIX_CHARS:
        return "expected 1 to 64 characters of letters, digits, '_', '-', '.', ':'"
    return None


def safe_url(url: str) -> str:
    """The URL for logs and errors: a password never appears there."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable redis url>"
    if parts.password is not None:
        netloc = parts.netloc.rsplit("@", 1)[1]
        url = urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{netloc}"))
    if "password" in parts.query.lower():  # ?password= (unix://), ?sentinel_password= (redis+sentinel://)
        head, _, query = url.partition("?")
        pairs = (pair.partition("=") for pair in query.split("&"))
        url = head + "?" + "&".join(f"{k}=***" if "password" in k.lower() else k + eq + v for k, eq, v in pairs)
    return url


class OneLineParser(argparse.ArgumentParser):
    """argparse that answers a bad command line with one line (what was wrong, where to look), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}; see {self.prog} --help\n")
