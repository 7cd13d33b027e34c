"""Token prices per model, from a JSON data file the user can replace (AGENTWATCH_PRICING)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

PRICE_NAMES = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
# Files written before the 5m/1h split said cache_write; it was charged on all cache writes, i.e. the 5m rate.
OLD_NAMES = {"cache_write": "cache_write_5m"}
# A user file may leave out cache prices: the pricing page's multipliers of the input price fill them in.
INPUT_MULTIPLIERS = {"cache_write_5m": 1.25, "cache_write_1h": 2.0, "cache_read": 0.1}

# Bedrock adds a region and "anthropic.", and "-v1:0"; Vertex adds "@20250805"; Claude Code adds "[1m]".
_PROVIDER = re.compile(r"^(?:(?:us|eu|apac|global)\.)?(?:anthropic\.)?")
_SUFFIX = re.compile(r"(?:\[1m\]|@\d{8}|-v\d+(?::\d+)?|-\d{8})$")
# After a prefix key, a short number is a minor version the table lacks (claude-opus-4-9 is not Opus 4).
_MINOR = re.compile(r"\d{1,2}(?:-|$)")


class PricingError(ValueError):
    pass


def normalize(model: str) -> str:
    """us.anthropic.claude-opus-4-1-20250805-v1:0, claude-opus-4-1@20250805 -> claude-opus-4-1."""
    name = _PROVIDER.sub("", model.strip().lower(), count=1)
    while (shorter := _SUFFIX.sub("", name, count=1)) != name:
        name = shorter
    return name


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


@dataclass(frozen=True)
class Pricing:
    table: dict[str, dict[str, float]]
    # model id -> its rates: transcripts price every response, and ids repeat (a few distinct ones per session)
    _found: dict[str, dict[str, float] | None] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, path: Path | None = None) -> Pricing:
        if path is None:
            text = resources.files("ingest").joinpath("pricing.json").read_text(encoding="utf-8")
            where = "the bundled pricing.json"
        else:
            where = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise PricingError(f"cannot read pricing file {where}: {exc.strerror}") from None
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise PricingError(f"pricing file {where} is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise PricingError(f"pricing file {where}: expected an object of models, got {type(raw).__name__}")
        table = {normalize(m): _rates(where, m, p) for m, p in raw.items() if not m.startswith("_")}
        if not table:
            raise PricingError(
                f'pricing file {where}: no models in it, expected e.g. {{"sonnet": {{"input": 3, ...}}}}'
            )
        return cls(table)

    def rates(self, model: str | None) -> dict[str, float] | None:
        """Exact id, else the longest key that is a prefix up to a '-', else a family key found in the id."""
        if not model:
            return None
        if model in self._found:
            return self._found[model]
        if len(self._found) >= 1024:
            self._found.clear()
        rates = self._found[model] = self._lookup(model)
        return rates

    def _lookup(self, model: str) -> dict[str, float] | None:
        name = normalize(model)
        if name in self.table:
            return self.table[name]
        prefixes = [k for k in self.table if name.startswith(k + "-") and not _MINOR.match(name, len(k) + 1)]
        if prefixes:
            return self.table[max(prefixes, key=len)]
        families = [k for k in self.table if "-" not in k and k in name]
        return self.table[max(families, key=len)] if families else None

    def cost(self, model: str | None, usage: dict[str, Any] | None) -> float | None:
        """USD for one usage block; None when the model or the usage is unknown (never a guess)."""
        rates = self.rates(model)
        if rates is None or not usage:
            return None
        counts = {
            "input": _count(usage.get("input_tokens")),
            "output": _count(usage.get("output_tokens")),
            "cache_read": _count(usage.get("cache_read_input_tokens")),
            "cache_write_5m": _count(usage.get("cache_creation_input_tokens")),
        }
        split = usage.get("cache_creation")
        if isinstance(split, dict):
            five, hour = _count(split.get("ephemeral_5m_input_tokens")), _count(split.get("ephemeral_1h_input_tokens"))
            # The split, when there, is the same tokens as cache_creation_input_tokens broken down by lifetime.
            if five is not None or hour is not None:
                counts["cache_write_5m"], counts["cache_write_1h"] = five, hour
        seen = [(name, n) for name, n in counts.items() if n is not None]
        if not seen:
            return None
        return round(sum(n * rates[name] for name, n in seen) / 1_000_000, 6)


def _rates(where: str, model: str, prices: Any) -> dict[str, float]:
    def bad(problem: str) -> PricingError:
        return PricingError(f"pricing file {where}: {model!r} {problem}")

    if not isinstance(prices, dict):
        raise bad(f"must map price names to numbers, got {prices!r}")
    rates: dict[str, float] = {}
    for name, value in prices.items():
        if name not in PRICE_NAMES and name not in OLD_NAMES:
            raise bad(f"has unknown price name {name!r}; expected {', '.join(PRICE_NAMES)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise bad(f"{name} must be a number >= 0, got {value!r}")
        if name in OLD_NAMES:  # the new name wins when a file has both
            rates.setdefault(OLD_NAMES[name], float(value))
        else:
            rates[name] = float(value)
    for name in ("input", "output"):
        if name not in rates:
            raise bad(f"lacks the {name!r} price")
    for name, factor in INPUT_MULTIPLIERS.items():
        rates.setdefault(name, rates["input"] * factor)
    return rates
