"""Token prices per model, from a JSON data file the user can replace (AGENTWATCH_PRICING)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

# usage field in Claude Code's Agent tool_response -> price key in the table
USAGE_PRICES = {
    "input_tokens": "input",
    "output_tokens": "output",
    "cache_read_input_tokens": "cache_read",
    "cache_creation_input_tokens": "cache_write",
}


class PricingError(ValueError):
    pass


@dataclass(frozen=True)
class Pricing:
    table: dict[str, dict[str, float]]

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
        table: dict[str, dict[str, float]] = {}
        for model, prices in raw.items():
            if model.startswith("_"):
                continue
            if not isinstance(prices, dict) or not all(isinstance(v, int | float) for v in prices.values()):
                raise PricingError(f"pricing file {where}: {model!r} must map price names to numbers, got {prices!r}")
            table[model] = {k: float(v) for k, v in prices.items()}
        return cls(table)

    def rates(self, model: str | None) -> dict[str, float] | None:
        if not model:
            return None
        if model in self.table:
            return self.table[model]
        lowered = model.lower()
        return next((v for k, v in self.table.items() if k in lowered), None)

    def cost(self, model: str | None, usage: dict[str, Any] | None) -> float | None:
        """USD for one usage block; None when the model or the usage is unknown (never a guess)."""
        rates = self.rates(model)
        if rates is None or not usage:
            return None
        total = 0.0
        seen = False
        for field, price in USAGE_PRICES.items():
            count = usage.get(field)
            if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
                total += count * rates.get(price, 0.0) / 1_000_000
                seen = True
        return round(total, 6) if seen else None
