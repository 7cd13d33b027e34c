"""Redaction: every bundled rule against its own examples and near misses, planted secrets in random text,
and hook payloads through the real normalizer."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.events import Normalizer, Rejected
from ingest.pricing import Pricing
from ingest.redact import REDACTED, Example, RedactError, Redactor, Rule, default_rules

reliability = pytest.mark.reliability

RULES = default_rules()
REDACT = Redactor()
EXAMPLES = [(rule, ex) for rule in RULES for ex in rule.examples]
CUT_EXAMPLES = [(rule, ex) for rule in RULES for ex in rule.cut_examples]
NEAR_MISSES = [(rule, text) for rule in RULES for text in rule.near_misses]
NOW = 1_800_000_000_000


def _ids(cases: list[tuple[Rule, Any]]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for rule, _ in cases:
        seen[rule.name] = seen.get(rule.name, 0) + 1
        out.append(f"{rule.name}-{seen[rule.name]}")
    return out


# ---- the data file


def test_every_rule_has_examples_and_near_misses() -> None:
    assert len({rule.name for rule in RULES}) == len(RULES) >= 20
    for rule in RULES:
        assert rule.examples, f"{rule.name}: no example"
        assert rule.near_misses, f"{rule.name}: no near miss"
        for ex in (*rule.examples, *rule.cut_examples):
            assert ex.secret and ex.secret in ex.text and ex.secret not in ex.redacted, f"{rule.name}: {ex}"


def test_every_rule_starts_with_a_literal_or_a_class() -> None:
    """What keeps the rules fast: the engine rules out a rule whose first character cannot match in one step."""
    for rule in RULES:
        assert re.match(r"[\w:-]|\[|\(\?:\[", rule.regex) and not rule.regex.startswith("\\"), rule.name


# ---- one test per rule


@reliability(
    "Security",
    "every redaction rule on its own examples",
    injected="the examples in ingest/redact_patterns.toml: API keys, tokens, JSON and env pairs, headers, flags, URLs",
    checked="each scrubbed to exactly the expected text (the secret gone, the rest of the line kept), by the rule alone too",
)
@pytest.mark.parametrize(("rule", "example"), EXAMPLES + CUT_EXAMPLES, ids=_ids(EXAMPLES + CUT_EXAMPLES))
def test_example_is_redacted(rule: Rule, example: Example) -> None:
    out = REDACT(example.text)
    assert out == example.redacted
    assert example.secret not in out
    assert example.secret not in Redactor([rule])(example.text)  # the rule does the work, not a neighbour


@reliability(
    "Security",
    "near misses of every redaction rule",
    injected="text close to a secret: ghp_short, task-list, -p 8080, mkdir -p, passwordless, UUIDs, git SHAs, URLs",
    checked="left byte for byte as it was",
)
@pytest.mark.parametrize(("rule", "text"), NEAR_MISSES, ids=_ids(NEAR_MISSES))
def test_near_miss_is_kept(rule: Rule, text: str) -> None:
    assert REDACT(text) == text


# ---- user patterns


def test_user_patterns_add_to_the_defaults(tmp_path: Path) -> None:
    patterns = tmp_path / "patterns.txt"
    patterns.write_text("# tickets\nACME-[0-9]{6}\n\n(?i)internal-\\w+\nemp=(?P<secret>\\d+)\n")
    redact = Redactor.from_file(patterns)
    assert redact("ACME-123456 INTERNAL-host emp=42 ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ01") == (
        "[redacted] [redacted] emp=[redacted] [redacted]"
    )
    assert Redactor.from_file(None)("ACME-123456") == "ACME-123456"


def test_broken_user_pattern_is_refused_with_its_number(tmp_path: Path) -> None:
    patterns = tmp_path / "patterns.txt"
    patterns.write_text("# fine\nok\n([unclosed\n")
    with pytest.raises(RedactError) as err:
        Redactor.from_file(patterns)
    message = str(err.value)
    assert "\n" not in message and str(patterns) in message and "pattern 2 '([unclosed'" in message
    patterns.write_text("(?P<id>a)\n(?P<id>b)\n")
    with pytest.raises(RedactError, match="cannot be joined"):
        Redactor.from_file(patterns)
    with pytest.raises(RedactError, match="cannot read"):
        Redactor.from_file(tmp_path / "missing.txt")


# ---- planted secrets (hypothesis)

SEPARATORS = [" ", "\n", "\t", "  ", " | ", " ; ", "\n\n", " && "]
fillers = st.text(max_size=30)
plants = st.tuples(fillers, st.sampled_from(SEPARATORS), st.sampled_from(EXAMPLES), st.sampled_from(SEPARATORS))


@reliability(
    "Security",
    "secrets planted in random text (hypothesis)",
    injected="500 random texts with one to six examples of every kind at random places, between random separators",
    checked="no secret survives; the random text around them comes out unchanged",
)
@settings(max_examples=500, deadline=None)
@given(st.lists(plants, min_size=1, max_size=6), fillers)
def test_planted_secrets_never_survive(pieces: list[tuple[str, str, tuple[Rule, Example], str]], tail: str) -> None:
    text = expected = ""
    for filler, before, (_, example), after in pieces:
        text += filler + before + example.text + after
        expected += filler + before + example.redacted + after
    out = REDACT(text + tail)
    for _, _, (_, example), _ in pieces:
        assert example.secret not in out
    assert out == expected + tail


# ---- through the real normalizer (hypothesis)


def _planted(draw: st.DrawFn) -> tuple[str, str]:
    _, example = draw(st.sampled_from(EXAMPLES))
    before = draw(st.text(max_size=40)) + draw(st.sampled_from(SEPARATORS))
    after = draw(st.sampled_from(SEPARATORS)) + draw(st.text(max_size=40))
    return before + example.text + after, example.secret


@st.composite
def sessions(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[str]]:
    """Hook payloads whose free text fields each carry a planted secret; the secrets."""
    secrets: list[str] = []

    def text() -> str:
        value, secret = _planted(draw)
        secrets.append(secret)
        return value

    kinds = draw(st.lists(st.sampled_from(range(7)), min_size=1, max_size=8))
    payloads: list[dict[str, Any]] = []
    for i, kind in enumerate(kinds):
        call = {"tool_use_id": f"t{i}"}
        if kind == 0:
            agent = {"description": text(), "subagent_type": "Explore", "prompt": text()}
            payloads.append({"hook_event_name": "PreToolUse", "tool_name": "Agent", "tool_input": agent, **call})
        elif kind == 1:
            payloads.append({"hook_event_name": "Notification", "message": text(), "title": text()})
        elif kind == 2:
            bash = {"command": "x"}
            payloads.append({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": bash, **call})
            failed = {"tool_name": "Bash", "tool_input": bash, "error": text(), **call}
            payloads.append({"hook_event_name": "PostToolUseFailure", **failed})
        elif kind == 3:
            payloads.append({"hook_event_name": "StopFailure", "error": "rate_limit", "error_details": text()})
        elif kind == 4:
            payloads.append({"hook_event_name": "UserPromptSubmit", "prompt": text()})
        elif kind == 5:
            bash = {"command": text(), "description": text()}
            payloads.append({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": bash, **call})
        else:
            payloads.append({"hook_event_name": "Notification", "notification_type": "idle_prompt", "message": text()})
    payloads.append({"hook_event_name": "UserPromptSubmit", "prompt": text()})  # with details, one sure label
    return [{"session_id": "s1", "_received_at": NOW + i, **p} for i, p in enumerate(payloads)], secrets


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _published(payloads: list[dict[str, Any]], details: bool) -> list[str]:
    """Every event and every alive record the normalizer produced, as JSON."""
    norm = Normalizer(source="t", pricing=Pricing.load(), redact=Redactor(), details=details)
    out = []
    for payload in payloads:
        try:
            events = norm.feed(payload, payload["_received_at"])
        except Rejected:
            continue
        sets, _, _ = norm.take_changes()
        out += [json.dumps(event) for event in events] + list(sets.values())
    return out


@reliability(
    "Security",
    "secrets in hook payloads through the normalizer (hypothesis)",
    injected="300 generated sessions: Agent descriptions and prompts, Bash commands, notifications, tool and stop failures, user prompts, each with a planted secret",
    checked="with and without --publish-details, no secret in any event or alive record",
)
@settings(max_examples=300, deadline=None)
@given(sessions(), st.booleans())
def test_normalizer_publishes_no_planted_secret(session: tuple[list[dict[str, Any]], list[str]], details: bool) -> None:
    payloads, secrets = session
    published = _published(payloads, details)
    strings = [s for blob in published for s in _strings(json.loads(blob))]
    for secret in secrets:
        assert not any(secret in s for s in strings)
        assert json.dumps(secret)[1:-1] not in "".join(published)
    if details:  # the checks above would also pass with nothing published
        assert any(REDACTED in s for s in strings)


# ---- fields beyond the texts: identifiers (types, models, tools, skills, errors) and the checkpoint's open
# calls, which once kept the raw start of each command in Redis.

SECRET = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
AGENT = {"description": "d", "prompt": "p", "subagent_type": "Explore"}


def _call(tool: str, **tool_input: Any) -> list[dict[str, Any]]:
    return [{"hook_event_name": "PreToolUse", "tool_name": tool, "tool_use_id": "t1", "tool_input": tool_input}]


IDENTIFIERS = {
    "open call key in the checkpoint (Bash command)": _call(
        "Bash", command=f"curl -H 'Authorization: Bearer {SECRET}'"
    ),
    "open call key in the checkpoint (Agent description)": _call(
        "Agent", **{**AGENT, "description": f"rotate {SECRET}"}
    ),
    "StopFailure error": [{"hook_event_name": "StopFailure", "error": f"token {SECRET} rejected"}],
    "Skill command": _call("Skill", command=f"/deploy {SECRET}"),
    "Agent subagent_type": _call("Agent", **{**AGENT, "subagent_type": SECRET}),
    "Agent model": _call("Agent", **AGENT, model=SECRET),
    "tool name": _call(f"mcp__{SECRET}"),
    "project (cwd)": [{"hook_event_name": "SessionStart", "cwd": f"/home/dev/{SECRET}", "model": f"x-{SECRET}"}],
    "notification type and compaction trigger": [
        {"hook_event_name": "Notification", "notification_type": SECRET, "message": "m"},
        {"hook_event_name": "PreCompact", "trigger": SECRET},
    ],
}


@pytest.mark.parametrize("payloads", list(IDENTIFIERS.values()), ids=list(IDENTIFIERS))
def test_identifiers_and_the_checkpoint_are_redacted_too(payloads: list[dict[str, Any]]) -> None:
    norm = Normalizer(source="t", pricing=Pricing.load(), redact=Redactor())
    for i, payload in enumerate(payloads):
        events = norm.feed({"session_id": "s1", **payload}, NOW + i)
        sets, _, _ = norm.take_changes()
        published = json.dumps([events, sets, norm.state()])
        assert SECRET not in published and SECRET[:12] not in published


def test_a_secret_cut_in_half_by_the_read_limit_is_never_published() -> None:
    # A long secret shrinks to "[redacted]", which pulls what follows into the published 200 characters: a
    # token cut by the 800-character read limit (too short to be recognised) must not come along.
    block = "-----BEGIN RSA PRIVATE KEY-----\n" + "A" * 700 + "\n-----END RSA PRIVATE KEY-----"
    block += " " * (794 - len(block))
    description = block + " " + SECRET  # the token starts at 795: the first 5 characters are read
    norm = Normalizer(source="t", pricing=Pricing.load(), redact=Redactor())
    events = norm.feed({"session_id": "s1", **_call("Agent", **{**AGENT, "description": description})[0]}, NOW)
    published = json.dumps([events, norm.take_changes()[0]])
    assert REDACTED in published and SECRET[:5] not in published
