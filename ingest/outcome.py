"""How an agent's run turned out: the Agent tool's status, Stop's background task status, and a
STATUS-TRUTH block in its last message (`shipped: functional|partial|no`), which says how it really went."""

from __future__ import annotations

import re
from typing import Any

MARKER_RE = re.compile(r"=== *STATUS-TRUTH MARKER *===(.*)", re.S)
SHIPPED_RE = re.compile(r"shipped\s*:\s*([A-Za-z_-]+)", re.I)
SHIPPED_OUTCOME = {
    "functional": "success",
    "yes": "success",
    "true": "success",
    "complete": "success",
    "completed": "success",
    "done": "success",
    "partial": "partial",
    "partially": "partial",
    "no": "failure",
    "none": "failure",
    "false": "failure",
    "broken": "failure",
    "failed": "failure",
    "nothing": "failure",
}
STATUS_OUTCOME = {
    "completed": "success",
    "success": "success",
    "failed": "failure",
    "error": "failure",
    "killed": "failure",
    "cancelled": "failure",
    "stopped": "failure",
}
FINISHED_BACKGROUND = frozenset({"completed", "failed", "error", "killed", "cancelled", "stopped"})


def response_text(response: dict[str, Any]) -> str | None:
    content = response.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [str(c["text"]) for c in content if isinstance(c, dict) and isinstance(c.get("text"), str)]
        return "\n".join(texts) or None
    return None


def marker_outcome(text: Any) -> str | None:
    """The outcome a STATUS-TRUTH block states; None when there is no block."""
    if not isinstance(text, str):
        return None
    block = MARKER_RE.search(text)
    if not block:
        return None
    shipped = SHIPPED_RE.search(block.group(1))
    if not shipped:
        return "unknown"
    return SHIPPED_OUTCOME.get(shipped.group(1).lower(), "unknown")
