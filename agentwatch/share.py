"""agentwatch share: print a link that shows one session, read-only, until it expires."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Mapping, Sequence

from contract import OneLineParser, SettingsError
from relay.share import sign

DEFAULT_URL = "http://127.0.0.1:8201"
DEFAULT_TTL = "1h"
MAX_TTL_S = 365 * 86400
MAX_SESSION_CHARS = 100  # ingest caps published identifiers at this length
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
TTL = re.compile(r"([0-9]{1,9})([smhd]?)")


def parse_ttl(value: str) -> int:
    """Seconds in '90', '90s', '15m', '1h' or '7d'."""
    match = TTL.fullmatch(value.strip())
    seconds = int(match[1]) * UNITS[match[2]] if match else 0
    if not 0 < seconds <= MAX_TTL_S:
        raise SettingsError(f"--ttl has value {value!r}: expected seconds, or a number with s, m, h or d, up to 365d")
    return seconds


def parse_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or "?" in value or "#" in value:
        raise SettingsError(f"--url has value {value!r}: expected the page's address, e.g. {DEFAULT_URL}")
    return value.rstrip("/")


def share_url(argv: Sequence[str], env: Mapping[str, str] = os.environ, now: float | None = None) -> tuple[str, int]:
    """The link and its expiry (unix seconds) for a command line; SettingsError for a bad one."""
    parser = OneLineParser(prog="agentwatch share", description="Print a read-only link to one session.")
    parser.add_argument("--session", required=True, help="the session id to show (and nothing else)")
    parser.add_argument("--ttl", default=DEFAULT_TTL, help="how long the link works: 3600, 90s, 15m, 1h, 7d (1h)")
    parser.add_argument(
        "--url",
        default=env.get("AGENTWATCH_PUBLIC_URL") or DEFAULT_URL,
        help="the relay's address as viewers reach it (AGENTWATCH_PUBLIC_URL; default %(default)s)",
    )
    ns = parser.parse_args(argv)
    if not ns.session or len(ns.session) > MAX_SESSION_CHARS or not ns.session.isprintable():
        raise SettingsError(f"--session has value {ns.session!r}: expected a session id (1 to 100 characters)")
    ttl, base = parse_ttl(ns.ttl), parse_url(ns.url)
    secret = env.get("AGENTWATCH_TOKEN")
    if not secret:
        raise SettingsError(
            "AGENTWATCH_TOKEN is not set: share links are signed with the relay's token; set it to the relay's value"
        )
    expires = int(time.time() if now is None else now) + ttl
    return f"{base}/?share={sign(secret, ns.session, expires)}", expires


def main(argv: Sequence[str]) -> int:
    try:
        url, expires = share_url(argv)
    except SettingsError as exc:
        print(f"agentwatch share: {exc}", file=sys.stderr)
        return 2
    until = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(expires))
    print(f"agentwatch share: read-only link to one session, valid until {until}", file=sys.stderr)
    print(url)
    return 0
