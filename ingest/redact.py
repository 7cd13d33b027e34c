"""Secrets never leave the machine: text fields are scrubbed at ingest, before anything reaches Redis."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

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


class RedactError(ValueError):
    pass


class Redactor:
    def __init__(self, patterns: Iterable[str] = DEFAULT_PATTERNS) -> None:
        self._re = re.compile("|".join(f"(?:{p})" for p in patterns))

    @classmethod
    def from_file(cls, path: Path | None) -> Redactor:
        """The defaults plus one regular expression per line of `path` (blank lines and # comments skipped)."""
        if path is None:
            return cls()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RedactError(f"cannot read redaction patterns {path}: {exc.strerror}") from None
        extra = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        for number, pattern in enumerate(extra, 1):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise RedactError(
                    f"{path}: pattern {number} {pattern!r} is not a valid regular expression ({exc})"
                ) from None
        return cls((*DEFAULT_PATTERNS, *extra))

    def __call__(self, text: str) -> str:
        return self._re.sub(REDACTED, text)
