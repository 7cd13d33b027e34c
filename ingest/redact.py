"""Secrets never leave the machine: text fields are scrubbed at ingest, before anything reaches Redis.

The default rules are in redact_patterns.toml, each with examples and near misses the tests run. A rule's
group named `secret` marks what is replaced; the rest of its match stays, so the line can still be read:
`--password [redacted]`, `https://user:[redacted]@host`. User patterns (--redact-patterns) may use one too;
without it their whole match is replaced.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

REDACTED = "[redacted]"
RULES_FILE = "redact_patterns.toml"
_GLOBAL_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")


class RedactError(ValueError):
    pass


class Example(NamedTuple):
    text: str
    secret: str  # what must not survive
    redacted: str  # the whole text once scrubbed


@dataclass(frozen=True)
class Rule:
    name: str
    regex: str
    examples: tuple[Example, ...] = ()
    cut_examples: tuple[Example, ...] = ()  # only at the end of a text, as a length cap leaves them
    near_misses: tuple[str, ...] = ()
    scrub_context: bool = False  # scrub what the rule keeps too (it spans text that may hold another secret)


@cache
def default_rules() -> tuple[Rule, ...]:
    """The bundled rules, in the order they are tried."""
    where = f"the bundled {RULES_FILE}"
    try:
        data = tomllib.loads(resources.files("ingest").joinpath(RULES_FILE).read_text(encoding="utf-8"))
        return tuple(_rule(entry) for entry in data["rule"])
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise RedactError(f"{where} is unreadable: {exc!r}") from None


def _rule(entry: dict[str, Any]) -> Rule:
    return Rule(
        name=entry["name"],
        regex=entry["regex"],
        examples=tuple(Example(e["text"], e["secret"], e["redacted"]) for e in entry.get("examples", ())),
        cut_examples=tuple(Example(e["text"], e["secret"], e["redacted"]) for e in entry.get("cut_examples", ())),
        near_misses=tuple(entry.get("near_misses", ())),
        scrub_context=bool(entry.get("scrub_context", False)),
    )


class Redactor:
    """Replaces every match of the patterns (the bundled rules when None) with REDACTED, in one pass."""

    def __init__(self, patterns: Iterable[str | Rule] | None = None) -> None:
        rules = [r if isinstance(r, Rule) else Rule("", r) for r in (default_rules() if patterns is None else patterns)]
        self._secrets: list[tuple[str, bool]] = []  # per rule with one: its secret group, scrub its context
        parts = []
        for number, rule in enumerate(rules):
            regex = _scoped(rule.regex)
            if "secret" in re.compile(regex).groupindex:
                regex = regex.replace("(?P<secret>", f"(?P<_s{number}>").replace("(?P=secret)", f"(?P=_s{number})")
                self._secrets.append((f"_s{number}", rule.scrub_context))
            parts.append(f"(?:{regex})")
        # Every default rule starts with a literal or a character class (no \b, no group): the regex engine
        # then rules out one that cannot start at a position in one comparison, which keeps many rules fast.
        self._re = re.compile("|".join(parts))

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
        try:
            return cls((*default_rules(), *extra))
        except re.error as exc:  # each fine alone, not together: two groups of the same name, say
            raise RedactError(f"{path}: the patterns cannot be joined into one ({exc})") from None

    def __call__(self, text: str) -> str:
        return self._re.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        # Only one alternative matched, so at most one secret group is set: the matching rule's.
        for group, scrub in self._secrets:
            start, end = match.span(group)
            if start < end:
                before, after = match.string[match.start() : start], match.string[end : match.end()]
                if scrub:  # what the rule keeps spans other text, which may hold another secret
                    before, after = self(before), self(after)
                return before + REDACTED + after
        return REDACTED


def _scoped(regex: str) -> str:
    """`(?i)abc` -> `(?i:abc)`: flags for the whole pattern are refused in the middle of the alternation."""
    flags = _GLOBAL_FLAGS.match(regex)
    if flags is None:
        return regex
    rest = regex[flags.end() :]
    return f"(?{flags.group(1)}:{rest}{chr(10) if 'x' in flags.group(1) else ''})"
