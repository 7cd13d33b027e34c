"""The pricing table: model ids -> USD per million tokens, and the cost of one usage block."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest.pricing import Pricing, PricingError, normalize

# input, output, cache_write_5m, cache_write_1h, cache_read: the pricing page as of 2026-08-22
OPUS_4 = (15.0, 75.0, 18.75, 30.0, 1.5)
OPUS_45 = (5.0, 25.0, 6.25, 10.0, 0.5)
SONNET_4 = (3.0, 15.0, 3.75, 6.0, 0.3)
SONNET_5 = (2.0, 10.0, 2.5, 4.0, 0.2)
HAIKU_45 = (1.0, 5.0, 1.25, 2.0, 0.1)
HAIKU_35 = (0.8, 4.0, 1.0, 1.6, 0.08)
HAIKU_3 = (0.25, 1.25, 0.3, 0.5, 0.03)

# table key, a real id for it, its prices, and the cost of one million tokens of each of the five kinds
ROWS = [
    ("claude-opus-4", "claude-opus-4-20250514", OPUS_4, 140.25),
    ("claude-opus-4-0", "claude-opus-4-0", OPUS_4, 140.25),
    ("claude-opus-4-1", "claude-opus-4-1-20250805", OPUS_4, 140.25),
    ("claude-opus-4-5", "claude-opus-4-5-20251101", OPUS_45, 46.75),
    ("claude-opus-4-6", "claude-opus-4-6", OPUS_45, 46.75),
    ("claude-opus-4-7", "claude-opus-4-7", OPUS_45, 46.75),
    ("claude-opus-4-8", "claude-opus-4-8", OPUS_45, 46.75),
    ("claude-opus-5", "claude-opus-5", OPUS_45, 46.75),
    ("claude-sonnet-4", "claude-sonnet-4-20250514", SONNET_4, 28.05),
    ("claude-sonnet-4-0", "claude-sonnet-4-0", SONNET_4, 28.05),
    ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", SONNET_4, 28.05),
    ("claude-sonnet-4-6", "claude-sonnet-4-6", SONNET_4, 28.05),
    ("claude-sonnet-5", "claude-sonnet-5", SONNET_5, 18.7),
    ("claude-haiku-4-5", "claude-haiku-4-5-20251001", HAIKU_45, 9.35),
    ("claude-3-opus", "claude-3-opus-20240229", OPUS_4, 140.25),
    ("claude-3-7-sonnet", "claude-3-7-sonnet-20250219", SONNET_4, 28.05),
    ("claude-3-5-sonnet", "claude-3-5-sonnet-20241022", SONNET_4, 28.05),
    ("claude-3-5-haiku", "claude-3-5-haiku-20241022", HAIKU_35, 7.48),
    ("claude-3-haiku", "claude-3-haiku-20240307", HAIKU_3, 2.33),
    ("opus", "opus", OPUS_45, 46.75),
    ("sonnet", "sonnet", SONNET_4, 28.05),
    ("haiku", "haiku", HAIKU_45, 9.35),
]
MILLION_EACH = {
    "input_tokens": 1_000_000,
    "output_tokens": 1_000_000,
    "cache_read_input_tokens": 1_000_000,
    "cache_creation_input_tokens": 2_000_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 1_000_000, "ephemeral_1h_input_tokens": 1_000_000},
}


def rates(prices: tuple[float, ...]) -> dict[str, float]:
    return dict(zip(("input", "output", "cache_write_5m", "cache_write_1h", "cache_read"), prices, strict=True))


def write(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bundled() -> Pricing:
    return Pricing.load()


def test_every_bundled_row_is_checked_here(bundled: Pricing) -> None:
    """A row added to pricing.json without a row in ROWS fails, so no price goes in unchecked."""
    assert set(bundled.table) == {key for key, *_ in ROWS}


@pytest.mark.parametrize(("key", "model", "prices", "total"), ROWS, ids=[r[0] for r in ROWS])
def test_each_model_row_is_priced_exactly(
    bundled: Pricing, key: str, model: str, prices: tuple[float, ...], total: float
) -> None:
    """Each model id gets its own row's five prices, and a million tokens of each kind cost their sum."""
    assert bundled.table[key] == rates(prices)
    assert bundled.rates(model) == rates(prices)
    assert bundled.cost(model, MILLION_EACH) == total


def test_sonnet_4_5_foreground_agent_cost_stays_as_test_events_expects(bundled: Pricing) -> None:
    """1M input at $3 plus 100k output at $15 is $4.50 (tests/test_events.py relies on it)."""
    assert bundled.cost("claude-sonnet-4-5", {"input_tokens": 1_000_000, "output_tokens": 100_000}) == 4.5


@pytest.mark.parametrize(
    ("model", "normalized"),
    [
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("CLAUDE-Opus-4-6[1M]", "claude-opus-4-6"),
        ("claude-sonnet-4-5-20250929[1m]", "claude-sonnet-4-5"),
        ("anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("eu.anthropic.claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet"),
        ("apac.anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("global.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
        ("claude-opus-4-1@20250805", "claude-opus-4-1"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        ("claude-3-haiku@20240307", "claude-3-haiku"),
        ("  claude-opus-4-6 ", "claude-opus-4-6"),
        ("<synthetic>", "<synthetic>"),
    ],
)
def test_ids_lose_date_region_provider_and_version_before_lookup(model: str, normalized: str) -> None:
    """Dates, [1m], Bedrock region/anthropic. prefixes and -vN:M, and Vertex @date are not part of the model."""
    assert normalize(model) == normalized


@pytest.mark.parametrize(
    ("model", "prices"),
    [
        ("us.anthropic.claude-opus-4-1-20250805-v1:0", OPUS_4),
        ("global.anthropic.claude-opus-4-6-v1", OPUS_45),
        ("claude-opus-4-6[1m]", OPUS_45),
        ("claude-3-5-haiku@20241022", HAIKU_35),
        ("anthropic.claude-3-haiku-20240307-v1:0", HAIKU_3),
    ],
)
def test_provider_ids_find_their_row(bundled: Pricing, model: str, prices: tuple[float, ...]) -> None:
    """A Bedrock or Vertex id costs what the plain Anthropic id costs."""
    assert bundled.rates(model) == rates(prices)


def test_longest_prefix_wins_at_a_dash(tmp_path: Path) -> None:
    """claude-opus-4-1-x is Opus 4.1, claude-opus-4-x is Opus 4, claude-opus-41 is neither."""
    pricing = Pricing.load(
        write(
            tmp_path,
            {"claude-opus-4": {"input": 15, "output": 75}, "claude-opus-4-1": {"input": 14, "output": 70}},
        )
    )
    assert pricing.cost("claude-opus-4-1-fast", {"input_tokens": 1_000_000}) == 14.0
    assert pricing.cost("claude-opus-4-fast", {"input_tokens": 1_000_000}) == 15.0
    assert pricing.cost("claude-opus-41", {"input_tokens": 1_000_000}) is None


def test_a_newer_minor_version_is_not_caught_by_its_major_row(bundled: Pricing, tmp_path: Path) -> None:
    """claude-opus-4-6 is never priced as Opus 4.0: its own row, else the family, else unpriced."""
    assert bundled.rates("claude-opus-4-6") == rates(OPUS_45)
    assert bundled.rates("claude-opus-4-9") == rates(OPUS_45)  # no row: the opus family, not 4.0's 15/75
    only_4 = Pricing.load(write(tmp_path, {"claude-opus-4": {"input": 15, "output": 75}}))
    assert only_4.rates("claude-opus-4-6") is None
    assert only_4.rates("claude-opus-4-20250514") == {
        "input": 15.0,
        "output": 75.0,
        "cache_write_5m": 18.75,
        "cache_write_1h": 30.0,
        "cache_read": 1.5,
    }


@pytest.mark.parametrize(
    ("model", "prices"),
    [
        ("opus", OPUS_45),
        ("sonnet", SONNET_4),
        ("haiku", HAIKU_45),
        ("Opus", OPUS_45),
        ("claude-opus-6", OPUS_45),
        ("claude-sonnet-4-7", SONNET_4),
        ("claude-haiku-5", HAIKU_45),
        ("us.anthropic.claude-haiku-9-20300101-v1:0", HAIKU_45),
    ],
)
def test_unknown_ids_of_a_family_get_the_current_generation(
    bundled: Pricing, model: str, prices: tuple[float, ...]
) -> None:
    """The Agent tool's bare aliases and ids with no row fall back to Opus 4.5+, Sonnet 4.5, Haiku 4.5 prices."""
    assert bundled.rates(model) == rates(prices)


@pytest.mark.parametrize("model", ["<synthetic>", "gpt-4o", "anthropic.claude-v2:1", "claude-instant-1", "", None])
def test_a_model_matching_nothing_is_unpriced_not_free(bundled: Pricing, model: str | None) -> None:
    """No row and no family: cost is None, never 0."""
    assert bundled.rates(model) is None
    assert bundled.cost(model, {"input_tokens": 1000, "output_tokens": 1000}) is None


@pytest.mark.parametrize(
    "usage",
    [None, {}, {"input_tokens": -1}, {"input_tokens": "1000"}, {"input_tokens": True}, {"output_tokens": 1.5}],
)
def test_usage_without_a_token_count_has_no_cost(bundled: Pricing, usage: dict[str, Any] | None) -> None:
    """Only non-negative ints count as tokens; with none of them the cost is unknown, not 0."""
    assert bundled.cost("claude-sonnet-4-5", usage) is None


def test_zero_tokens_of_a_priced_model_cost_zero(bundled: Pricing) -> None:
    """A real zero stays a zero: the model is priced and the usage is known."""
    assert bundled.cost("claude-sonnet-4-5", {"input_tokens": 0, "output_tokens": 0}) == 0.0


def test_cache_writes_are_priced_by_lifetime_when_the_split_is_there(bundled: Pricing) -> None:
    """5m writes at 1.25x input, 1h writes at 2x; without the split every write is a 5m write."""
    split = {
        "cache_creation_input_tokens": 300_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 100_000, "ephemeral_1h_input_tokens": 200_000},
    }
    assert bundled.cost("claude-sonnet-4-5", split) == 1.575  # 100k at $3.75 + 200k at $6
    assert bundled.cost("claude-sonnet-4-5", {"cache_creation_input_tokens": 300_000}) == 1.125
    only_1h = {"cache_creation_input_tokens": 300_000, "cache_creation": {"ephemeral_1h_input_tokens": 300_000}}
    assert bundled.cost("claude-opus-4-1", only_1h) == 9.0  # 300k at $30
    empty_split = {"cache_creation_input_tokens": 300_000, "cache_creation": {}}
    assert bundled.cost("claude-sonnet-4-5", empty_split) == 1.125


def test_cost_is_rounded_to_six_places(bundled: Pricing) -> None:
    """One input token of Haiku 3 is $0.00000025, which rounds to $0.0."""
    assert bundled.cost("claude-3-haiku", {"input_tokens": 1}) == 0.0
    assert bundled.cost("claude-3-haiku", {"input_tokens": 3, "cache_read_input_tokens": 7}) == 1e-06


def test_an_old_override_file_with_cache_write_keeps_working(tmp_path: Path) -> None:
    """The pre-split names (cache_write = the 5m rate) load; the missing 1h rate is 2x input, as on the page."""
    old = {
        "_comment": "USD per million tokens.",
        "claude-sonnet-4-5": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75},
        "opus": {"input": 5.0, "output": 25.0, "cache_read": 0.5, "cache_write": 6.25},
    }
    pricing = Pricing.load(write(tmp_path, old))
    assert pricing.rates("claude-sonnet-4-5-20250929") == rates(SONNET_4)
    assert pricing.rates("claude-opus-4-7") == rates(OPUS_45)
    assert pricing.cost("claude-sonnet-4-5", {"cache_creation_input_tokens": 1_000_000}) == 3.75


def test_an_override_file_may_name_only_input_and_output(tmp_path: Path) -> None:
    """Cache prices left out are the page's multipliers of input; the new name beats the old one."""
    pricing = Pricing.load(
        write(tmp_path, {"Team-Model-20260101": {"input": 4, "output": 20, "cache_write": 9, "cache_write_5m": 5}})
    )
    assert pricing.rates("team-model") == {
        "input": 4.0,
        "output": 20.0,
        "cache_write_5m": 5.0,
        "cache_write_1h": 8.0,
        "cache_read": 0.4,
    }
    assert pricing.rates("claude-sonnet-4-5") is None  # an override replaces the bundled table


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not valid JSON: Expecting property name"),
        ("[]", "expected an object of models, got list"),
        ({"_comment": "nothing"}, "no models in it"),
        ({"sonnet": 3}, "'sonnet' must map price names to numbers, got 3"),
        ({"sonnet": {"input": 3, "output": 15, "cache_wrte": 1}}, "'sonnet' has unknown price name 'cache_wrte'"),
        ({"sonnet": {"input": "3", "output": 15}}, "'sonnet' input must be a number >= 0, got '3'"),
        ({"sonnet": {"input": -3, "output": 15}}, "'sonnet' input must be a number >= 0, got -3"),
        ({"sonnet": {"input": True, "output": 15}}, "'sonnet' input must be a number >= 0, got True"),
        ('{"sonnet": {"input": NaN, "output": 15}}', "'sonnet' input must be a number >= 0, got nan"),
        ({"sonnet": {"input": 3}}, "'sonnet' lacks the 'output' price"),
    ],
)
def test_a_bad_file_is_one_clear_line_naming_the_file(tmp_path: Path, content: Any, message: str) -> None:
    """Every refusal is a PricingError of one line that says which file and what is wrong in it."""
    path = write(tmp_path, content)
    with pytest.raises(PricingError) as info:
        Pricing.load(path)
    text = str(info.value)
    assert text.startswith(f"pricing file {path}")
    assert message in text
    assert "\n" not in text


def test_a_missing_file_names_the_file(tmp_path: Path) -> None:
    """AGENTWATCH_PRICING pointing nowhere says so in one line."""
    path = tmp_path / "nope.json"
    with pytest.raises(PricingError, match="^cannot read pricing file .*nope.json: No such file or directory$"):
        Pricing.load(path)
