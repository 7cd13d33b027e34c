"""Secrets never leave the machine: text fields are scrubbed at ingest, before anything reaches Redis."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"

DEFAULT_PATTERNS = (
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
    r"\bsk-(?:ant-)?[A-Za-z0-9_-]{16,}",  # Anthropic / OpenAI style API keys
    r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{8,}",  # Stripe
    r"\bwhsec_[A-Za-z0-9]{8,}",
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
    r"\bAIza[0-9A-Za-z_-]{30,}",  # Google API key
    r"(?i:\bbearer\s+[A-Za-z0-9._~+/=-]{8,})",
    r"(?i:\b[A-Z0-9_]*(?:SECRET|TOKEN|PASSWORD|PASSWD|API_?KEY)[A-Z0-9_]*\s*[=:]\s*['\"]?[^\s'\"]{4,})",
    r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)",  # user:password@ in URLs
)


class Redactor:
    def __init__(self, patterns: Iterable[str] = DEFAULT_PATTERNS) -> None:
        self._re = re.compile("|".join(f"(?:{p})" for p in patterns))

    def __call__(self, text: str) -> str:
        return self._re.sub(REDACTED, text)
