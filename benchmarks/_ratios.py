"""Ratios of timings made side by side, for machines whose speed drifts."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Median over rounds of the ratio of two timings taken in the same round.

    The speed of a shared machine drifts by 2x within minutes; a ratio of
    medians taken minutes apart would mix that drift in, a ratio within a
    round cancels it.
    """
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))
