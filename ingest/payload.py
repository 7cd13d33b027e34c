"""A hook line -> the payload fields the normalizer reads, and nothing else.

Hook payloads carry large values ingest never looks at (a Read's file, a Bash command's output in
`tool_response`, the tool inputs of Write and Edit). msgspec decodes a line straight into the fields below and
skips the rest without building it; `tool_response` is kept as raw JSON and decoded only for the spawn tools,
whose result names the sub-agent. A line msgspec refuses is decoded again by the standard library, so every
line keeps exactly the answer it had before (accepted as it was, or rejected with the same reason).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# The fallback, for lines msgspec refuses: lone surrogate escapes and numbers beyond a double are valid JSON.
DECODER = json.JSONDecoder(parse_constant=_reject_constant)


NULL = msgspec.Raw(b"null")


class Payload(msgspec.Struct):
    """The top-level fields any rule reads (ingest/events.py and the modules it dispatches to)."""

    hook_event_name: Any = None
    session_id: Any = None
    agent_id: Any = None
    agent_type: Any = None
    received_at: Any = msgspec.field(default=None, name="_received_at")
    cwd: Any = None
    model: Any = None
    prompt: Any = None
    source: Any = None
    reason: Any = None
    trigger: Any = None
    transcript_path: Any = None
    agent_transcript_path: Any = None
    last_assistant_message: Any = None
    background_tasks: Any = None
    tool_name: Any = None
    tool_use_id: Any = None
    tool_input: Any = None
    tool_response: msgspec.Raw = NULL
    duration_ms: Any = None
    error: Any = None
    error_details: Any = None
    is_interrupt: Any = None
    notification_type: Any = None
    message: Any = None
    title: Any = None

    def get(self, name: str, default: Any = None) -> Any:
        """As dict.get on the decoded line (a field it does not hold reads as None, like a missing key)."""
        if name == "tool_response":
            value = msgspec.json.decode(self.tool_response)
            return default if value is None else value
        value = getattr(self, "received_at" if name == "_received_at" else name, None)
        return default if value is None else value


_decode = msgspec.json.Decoder(Payload).decode


def decode(line: bytes) -> Any:
    """The payload of one line: a Payload, or whatever the standard library makes of a line msgspec refuses.

    Raises UnicodeDecodeError for a line that is not UTF-8 and ValueError (or RecursionError) for one that is
    not JSON, as json.loads does.
    """
    try:
        return _decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return DECODER.decode(line.decode("utf-8"))


__all__ = ("DECODER", "Payload", "decode")
