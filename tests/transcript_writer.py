"""Claude Code transcript files written as Claude Code writes them, and usage counted the documented way.

The writer puts each response on several lines (one per content block) repeating its `message.id` and
`requestId`, the early ones with placeholder usage (`stop_reason: null`, 1 output token), as
../shared/reference/transcripts.md describes. `expected_usage` counts what was written independently of
ingest: per response the line with a stop_reason, else the one with the most output tokens.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRICING = json.loads((Path(__file__).resolve().parents[1] / "ingest" / "pricing.json").read_text())


@dataclass
class Written:
    path: Path
    key: tuple[str, str]
    model: str
    usage: dict[str, Any]
    final: bool
    sidechain: bool


@dataclass
class TranscriptWriter:
    root: Path  # stands for ~/.claude/projects
    session: str
    project: str = "-tmp-acme"
    lines: list[Written] = field(default_factory=list)

    @property
    def main_path(self) -> Path:
        return self.root / self.project / f"{self.session}.jsonl"

    def agent_path(self, agent_id: str, layout: str = "subagents") -> Path:
        if layout == "subagents":  # 2.1.2 and later
            return self.root / self.project / self.session / "subagents" / f"agent-{agent_id}.jsonl"
        return self.root / self.project / f"agent-{agent_id}.jsonl"  # 2.0.28 to 2.1.1

    def response(
        self,
        agent_id: str | None,
        model: str,
        usage: dict[str, Any],
        blocks: int = 2,
        final: bool = True,
        msg_id: str | None = None,
        request_id: str | None = None,
        path: Path | None = None,
        sidechain: bool = False,
    ) -> str:
        """One API response: `blocks` lines with its message id; the last carries `usage` (and a stop_reason
        when final), the earlier ones a placeholder. Returns the message id."""
        msg_id = msg_id or "msg_" + uuid.uuid4().hex[:20]
        request_id = request_id if request_id is not None else "req_" + uuid.uuid4().hex[:16]
        path = path or (self.main_path if agent_id is None else self.agent_path(agent_id))
        placeholder = {**usage, "output_tokens": 1}
        for i in range(blocks):
            last = i == blocks - 1
            self.line(
                path, agent_id, model, usage if last else placeholder, msg_id, request_id, last and final, sidechain
            )
        return msg_id

    def line(
        self,
        path: Path,
        agent_id: str | None,
        model: str,
        usage: dict[str, Any],
        msg_id: str,
        request_id: str,
        final: bool,
        sidechain: bool = False,
    ) -> None:
        entry: dict[str, Any] = {
            "parentUuid": None,
            "isSidechain": sidechain or agent_id is not None,
            "userType": "external",
            "cwd": "/tmp/acme",
            "sessionId": self.session,
            "version": "2.1.150",
            "type": "assistant",
            "message": {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": "working on it"}],
                "stop_reason": "end_turn" if final else None,
                "usage": usage,
            },
            "requestId": request_id,
            "uuid": str(uuid.uuid4()),
            "timestamp": "2026-11-29T10:00:00.000Z",
        }
        if agent_id is not None:
            entry["agentId"] = agent_id
        self.append(path, json.dumps(entry) + "\n")
        self.lines.append(Written(path, (msg_id, request_id), model, usage, final, sidechain))

    def other(self, path: Path, kind: str = "user") -> None:
        """A line without usage to count: a user turn, or a progress entry embedding a copy of a response."""
        entry: dict[str, Any] = {"type": kind, "sessionId": self.session, "uuid": str(uuid.uuid4())}
        if kind == "progress":
            entry["data"] = {"type": "agent_progress", "message": {"type": "assistant", "usage": {"output_tokens": 9}}}
        self.append(path, json.dumps(entry) + "\n")

    @staticmethod
    def append(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(text)


def usage(inp: int, out: int, read: int = 0, write_5m: int = 0, write_1h: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write_5m + write_1h,
        "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
    }


def price(model: str, u: dict[str, Any]) -> float:
    """From the dated table, by hand: per million tokens, 5m and 1h cache writes apart."""
    rates = PRICING[model]
    split = u.get("cache_creation") or {}
    return (
        u["input_tokens"] * rates["input"]
        + u["output_tokens"] * rates["output"]
        + u["cache_read_input_tokens"] * rates["cache_read"]
        + split.get("ephemeral_5m_input_tokens", 0) * rates["cache_write_5m"]
        + split.get("ephemeral_1h_input_tokens", 0) * rates["cache_write_1h"]
    ) / 1_000_000


def expected_usage(lines: list[Written], paths: set[Path]) -> dict[str, Any]:
    """Usage of the responses first written in `paths`, each counted once from its best line."""
    best: dict[tuple[str, str], Written] = {}
    owner: dict[tuple[str, str], Path] = {}
    for w in lines:
        owner.setdefault(w.key, w.path)
        old = best.get(w.key)
        if old is None or (not old.final and (w.final or w.usage["output_tokens"] > old.usage["output_tokens"])):
            best[w.key] = w
    mine = [w for k, w in best.items() if owner[k] in paths]
    return {
        "input": sum(w.usage["input_tokens"] for w in mine),
        "output": sum(w.usage["output_tokens"] for w in mine),
        "cache_read": sum(w.usage["cache_read_input_tokens"] for w in mine),
        "cache_write": sum(w.usage["cache_creation_input_tokens"] for w in mine),
        "messages": len(mine),
        "cost_usd": round(sum(price(w.model, w.usage) for w in mine), 6),
    }
