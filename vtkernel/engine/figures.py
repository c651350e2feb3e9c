"""Small helpers for the figures `%vt stats` and the benchmarks report. Pure."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float, digits: int = 2) -> float | None:
    """The `q` quantile (0..1) of already sorted values, nearest rank, rounded; None if there are none."""
    if not sorted_values:
        return None
    return round(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))], digits)
