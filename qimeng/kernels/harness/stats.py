"""Statistics of timings (no torch: the harness process uses them)."""

from __future__ import annotations

import math


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile (as numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: list[float]) -> float:
    """The arithmetic mean (``--protocol kernelbench`` reports it, as KernelBench does)."""
    return sum(values) / len(values)


def median_interval(values: list[float], z: float = 1.96) -> tuple[float, float]:
    """A distribution-free confidence interval of the median (95% for ``z`` = 1.96): the order statistics
    of ranks floor(n/2 - z*sqrt(n)/2) and ceil(1 + n/2 + z*sqrt(n)/2), the normal approximation of the
    binomial; for few values, the whole range."""
    ordered = sorted(values)
    n = len(ordered)
    half = z * n ** 0.5 / 2
    low = max(math.floor(n / 2 - half), 1)
    high = min(math.ceil(1 + n / 2 + half), n)
    return ordered[low - 1], ordered[high - 1]
