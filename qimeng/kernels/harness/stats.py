"""Statistics of timings (no torch: the harness process uses them)."""

from __future__ import annotations


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
