"""pass@k: the unbiased estimator, checked against hand-computed values, and its mean over a run's problems."""

from qimeng.core.verdict import Status
from qimeng.kernels.bench.metrics import compute_metrics, pass_at_k
from qimeng.kernels.result import EvalResult
from qimeng.kernels.store import EvalRecord


def test_the_estimator_matches_hand_computed_values() -> None:
    assert pass_at_k(5, 2, 1) == 0.4  # 2 of 5
    assert pass_at_k(4, 1, 2) == 0.5  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(4, 0, 2) == 0.0 and pass_at_k(3, 2, 2) == 1.0  # every pair holds a correct sample


def record(problem: str, candidate: str, status: Status) -> EvalRecord:
    return EvalRecord("r", problem, candidate, 0.0, EvalResult(status))


def test_the_mean_over_problems_counts_problems_without_samples_as_unsolved() -> None:
    records = [record("a", f"s{i}", Status.OK if i == 0 else Status.INCORRECT) for i in range(4)]
    records += [record("b", f"s{i}", Status.INCORRECT) for i in range(4)]
    metrics = compute_metrics(records, problems=["a", "b", "c"])
    assert metrics.pass_at_k == {1: (0.25 + 0 + 0) / 3}  # k = 5 and 10 exceed the 4 samples a problem has
    assert compute_metrics([]).pass_at_k == {}
