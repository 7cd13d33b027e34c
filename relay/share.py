"""Share links: a signed, expiring token that lets whoever holds it watch one session, read-only.

    token = base64url(JSON {"v": 1, "s": session, "exp": unix seconds}) "." base64url(HMAC-SHA256)

The MAC key is the relay's AGENTWATCH_TOKEN, so changing it revokes every link. The payload is signed, not
encrypted: whoever holds a link can read the session id and the expiry in it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass

__all__ = ("Share", "ShareRefused", "sign", "verify")

VERSION = 1
MAX_TOKEN_CHARS = 1024  # a session id of 100 characters makes a token of about 230
# Mixed into the MAC so it can never be replayed as a signature of anything else made with the same key.
CONTEXT = b"agentwatch-share-link:"
_PART = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Share:
    session: str
    expires: int  # unix seconds


class ShareRefused(Exception):
    """A share token the relay does not honour; `expired` tells a well-signed but expired one apart."""

    def __init__(self, reason: str, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired

    def __str__(self) -> str:
        return self.reason


def sign(secret: str, session: str, expires: int) -> str:
    payload = json.dumps({"v": VERSION, "s": session, "exp": expires}, separators=(",", ":")).encode()
    head = _b64(payload)
    return f"{head}.{_b64(_mac(secret, head))}"


def verify(secret: str | None, token: str, now: float | None = None) -> Share:
    """The share a token grants, or ShareRefused saying why not (signature first: nothing unsigned is read)."""
    if not secret:
        raise ShareRefused("share links need AGENTWATCH_TOKEN on the relay")
    head, _, mac = token.partition(".")
    if len(token) > MAX_TOKEN_CHARS or not _PART.fullmatch(head) or not _PART.fullmatch(mac):
        raise ShareRefused("malformed share token")
    if not hmac.compare_digest(_unb64(mac), _mac(secret, head)):
        raise ShareRefused("share token signature does not match")
    try:
        claims = json.loads(_unb64(head))
        session, expires = claims["s"], claims["exp"]
        if claims["v"] != VERSION or not isinstance(session, str) or not session or type(expires) is not int:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ShareRefused("share token payload is not understood") from None
    if (time.time() if now is None else now) >= expires:
        raise ShareRefused("share link expired", expired=True)
    return Share(session, expires)


def _mac(secret: str, head: str) -> bytes:
    return hmac.new(secret.encode(), CONTEXT + head.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return b""
