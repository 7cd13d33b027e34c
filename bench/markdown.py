"""Markdown tables and the way every figure is written in docs/performance.md."""

from __future__ import annotations

import math
from typing import Any


def table(headers: list[str], rows: list[list[Any]]) -> str:
    align = ["---" if i == 0 else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def ms(value: Any) -> str:
    """A latency; nan means no event of the window arrived before the cell ended (a backlog of seconds)."""
    return "saturated" if isinstance(value, float) and math.isnan(value) else cell(value)


def kib(value: float | None) -> str:
    return "–" if value is None else f"{value / 1024:,.1f} MiB"


def closed(codes: dict[str, int]) -> str:
    return ", ".join(f"{code}: {n}" for code, n in sorted(codes.items())) or "0"


def ratio(new: Any, old: Any) -> str:
    """new / baseline, as "0.12x"; – where either is missing, zero or not a number."""
    try:
        a, b = float(new), float(old)
    except (TypeError, ValueError):
        return "–"
    if math.isnan(a) or math.isnan(b) or b == 0:
        return "–"
    return f"{a / b:.2f}x" if a / b < 100 else f"{a / b:,.0f}x"


def number(value: float | None, unit: str = "") -> str:
    """A measured quantity with its unit, as large as it comes (12.3 ms, 57,375 lines/s)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
    return text + unit if unit in ("%", "x") else f"{text} {unit}".strip()
