from itertools import combinations

import pytest

from qimeng.hardware.pass_at_k import mean_pass_at_k, pass_at_k


@pytest.mark.parametrize("n,c,k", [(10, 3, 1), (10, 3, 5), (7, 1, 5), (10, 0, 10), (10, 10, 10), (6, 2, 3)])
def test_matches_enumeration(n, c, k):
    samples = [1] * c + [0] * (n - c)
    subsets = list(combinations(range(n), k))
    expected = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_undefined_below_k_and_mean():
    assert pass_at_k(3, 1, 5) is None
    assert pass_at_k(1, 1, 1) == 1.0
    assert mean_pass_at_k([(2, 1), (2, 0), (3, 1)], 1) == pytest.approx((0.5 + 0 + 1 / 3) / 3)
    assert mean_pass_at_k([(2, 1)], 5) is None
    with pytest.raises(ValueError):
        pass_at_k(2, 3, 1)
