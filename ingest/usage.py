"""Token usage from Claude Code transcripts, each API response counted once.

A response is written as several lines (one per content block) that repeat its `message.id` and `requestId`;
early lines hold placeholder usage (`stop_reason: null`, output tokens near 1) and the final line the real
figures, which in sub-agent files sometimes never comes (../shared/reference/transcripts.md, section 3). So
each response is counted from one whole line: the one with a `stop_reason`, else the one with the most output
tokens so far, replacing what was counted before (a delta). Totals are plain dicts, never changed in place:
an agent's view keeps the object it published, and a new one is a change to publish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from .agent import integer

Usage = dict[str, Any]  # {"input", "output", "cache_read", "cache_write", "messages": int, "cost_usd", "unpriced"}
TOKENS = ("input", "output", "cache_read", "cache_write")
LEDGER_CAP = 200_000  # responses remembered (about 120 bytes each): older ones get no more lines
Price = Callable[[str | None, dict[str, Any]], float | None]


@dataclass(frozen=True, slots=True)
class Line:
    """One assistant line's usage."""

    key: str  # the response: message.id and requestId
    final: bool  # the line with a stop_reason: the response's real figures
    model: str | None
    tokens: tuple[int, int, int, int]  # input (uncached), output, cache read, cache write
    raw: dict[str, Any]  # the usage object as written, for pricing (5m and 1h cache writes apart)
    sidechain: bool
    agent_id: str | None  # the entry's agentId: a sub-agent's line inside the main file (before 2.0.28)


class _Message(msgspec.Struct):
    """The fields of an assistant message we read; its content (most of a line's bytes) is skipped unread."""

    id: Any = None
    model: Any = None
    stop_reason: Any = None
    usage: Any = None


class _Entry(msgspec.Struct):
    type: Any = None
    message: _Message | None = None
    requestId: Any = None  # noqa: N815 - the transcript's own field name
    isSidechain: Any = None  # noqa: N815
    agentId: Any = None  # noqa: N815
    uuid: Any = None


_decode = msgspec.json.Decoder(_Entry).decode


def parse_line(raw: bytes) -> Line | None:
    """The usage an assistant line carries, or None for every other line (most of them, skipped unparsed)."""
    if b'"usage"' not in raw or b'"assistant"' not in raw:
        return None
    try:
        entry = _decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # a partial line after an unclean shutdown (Claude Code skips them too), or another shape
    message = entry.message
    if entry.type != "assistant" or message is None:
        return None  # progress entries embed copies of sub-agent messages: never counted
    usage, model = message.usage, message.model
    if not isinstance(usage, dict) or model == "<synthetic>":
        return None
    tokens = tuple(
        max(0, integer(usage.get(name)) or 0)
        for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    )
    if not any(tokens):
        return None  # an API error entry
    msg_id = message.id if isinstance(message.id, str) and message.id else entry.uuid
    if not isinstance(msg_id, str) or not msg_id:
        return None
    request, agent_id = entry.requestId, entry.agentId
    return Line(
        key=f"{msg_id}\x00{request if isinstance(request, str) else ''}",
        final=message.stop_reason is not None,
        model=model if isinstance(model, str) else None,
        tokens=(tokens[0], tokens[1], tokens[2], tokens[3]),
        raw=usage,
        sidechain=entry.isSidechain is True,
        agent_id=agent_id if isinstance(agent_id, str) and agent_id else None,
    )


@dataclass(slots=True)
class Counted:
    owner: str  # the transcript file it was counted from
    final: bool
    tokens: tuple[int, int, int, int]
    cost: float | None


class Ledger:
    """Every response counted so far, by key, and which file counted it."""

    def __init__(self, price: Price, cap: int = LEDGER_CAP) -> None:
        self.price = price
        self.cap = cap
        self.counted: dict[str, Counted] = {}

    def count(self, owner: str, session: str, line: Line) -> tuple[str, Usage] | None:
        """The change this line makes, as (file that owns the response, delta), or None.

        A response copied into another file (a fork, an old-style resume) stays with the file that counted it
        first."""
        key = f"{session}\x00{line.key}"
        before = self.counted.get(key)
        if before is not None and (before.final or (not line.final and line.tokens[1] <= before.tokens[1])):
            return None
        cost = self.price(line.model, line.raw)
        if before is None:
            if len(self.counted) >= self.cap:
                for old in list(self.counted)[: self.cap // 10]:
                    del self.counted[old]
            self.counted[key] = Counted(owner, line.final, line.tokens, cost)
            return owner, usage_of(line.tokens, cost, messages=1)
        delta = usage_of(
            tuple(a - b for a, b in zip(line.tokens, before.tokens, strict=True)),
            None if cost is None or before.cost is None else cost - before.cost,
            messages=0,
            unpriced=cost is None or before.cost is None,
        )
        before.final, before.tokens, before.cost = line.final, line.tokens, cost
        return before.owner, delta


def usage_of(tokens: Any, cost: float | None, messages: int, unpriced: bool | None = None) -> Usage:
    out: Usage = dict(zip(TOKENS, tokens, strict=True))
    out["messages"] = messages
    out["cost_usd"] = cost
    out["unpriced"] = cost is None if unpriced is None else unpriced
    return out


def add(total: Usage | None, delta: Usage | None) -> Usage | None:
    """A new total (never the same object): tokens add up, cost adds up over priced responses."""
    if delta is None:
        return total
    if total is None:
        total = usage_of((0, 0, 0, 0), 0.0, 0, unpriced=False)
    out: Usage = {name: int(total.get(name) or 0) + int(delta.get(name) or 0) for name in (*TOKENS, "messages")}
    cost = float(total.get("cost_usd") or 0.0) + float(delta.get("cost_usd") or 0.0)
    out["cost_usd"] = round(cost, 6)
    out["unpriced"] = bool(total.get("unpriced")) or bool(delta.get("unpriced"))
    if "basis" in total:
        out["basis"] = total["basis"]
    return out


def floor(tokens: dict[str, Any] | None, cost: float | None) -> Usage | None:
    """The Agent tool's usage (its final request only): shown as a lower bound when no transcript was read."""
    if tokens is None and cost is None:
        return None
    usage = tokens if isinstance(tokens, dict) else {}
    out = usage_of(
        (
            max(0, integer(usage.get("input_tokens")) or 0),
            max(0, integer(usage.get("output_tokens")) or 0),
            max(0, integer(usage.get("cache_read_input_tokens")) or 0),
            max(0, integer(usage.get("cache_creation_input_tokens")) or 0),
        ),
        cost,
        messages=0,
    )
    out["basis"] = "floor"
    return out
