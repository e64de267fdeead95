"""The unbiased pass@k estimator (Chen et al., 2021): 1 - C(n-c, k) / C(n, k)."""

from __future__ import annotations

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """Probability that at least one of k samples drawn from n (c of them correct) passes.

    ``None`` when fewer than k samples exist (the estimate is undefined).
    """
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if n < k:
        return None
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(counts: list[tuple[int, int]], k: int) -> float | None:
    """Mean pass@k over problems with at least k samples; a problem with no sample (n = 0) counts as 0.

    ``None`` when no problem has at least k samples.
    """
    values = [v for v in (pass_at_k(n, c, k) for n, c in counts if n) if v is not None]
    if not values:
        return None
    return float(np.sum(values) / (len(values) + sum(1 for n, _ in counts if n == 0)))
