"""Metrics computed by hand on results built in the test."""

from __future__ import annotations

import math

import pytest

from qimeng.kernels.store import EvalRecord
from qimeng.core.verdict import Status
from qimeng.kernels.bench.metrics import compute_metrics, fast_p, geometric_mean, speedup_over
from qimeng.kernels.result import EvalResult


def ok(speedup: float, compile_ms: float | None = None, candidate_ms: float = 1.0, **kw: object) -> EvalResult:
    baselines = {"eager": speedup * candidate_ms}
    if compile_ms is not None:
        baselines["compile"] = compile_ms
    return EvalResult(status=Status.OK, ref_ms=speedup * candidate_ms, candidate_ms=candidate_ms,
                      speedup=speedup, baselines_ms=baselines, **kw)


def rec(problem: str, candidate: str, result: EvalResult) -> EvalRecord:
    return EvalRecord("run", problem, candidate, 0.0, result)


def test_speedup_over():
    assert speedup_over(ok(2.0, compile_ms=0.5), "eager") == 2.0
    assert speedup_over(ok(2.0, compile_ms=0.5), "compile") == 0.5
    assert speedup_over(ok(2.0), "compile") is None  # compile not measured
    assert speedup_over(EvalResult(status=Status.INCORRECT, speedup=3.0, candidate_ms=1.0), "eager") is None
    assert speedup_over(ok(2.0, timing_meaningful=False), "eager") is None
    # without the interleaved ratio, eager falls back to the reference time
    assert speedup_over(EvalResult(status=Status.OK, ref_ms=3.0, candidate_ms=2.0), "eager") == 1.5


def test_fast_p_and_geomean_helpers():
    assert fast_p([2.0, 1.0, None, 0.5], 5, 1.0) == pytest.approx(1 / 5)  # strictly greater than p
    assert fast_p([2.0, None], 4, 0.0, solved=3) == pytest.approx(3 / 4)
    assert fast_p([], 0, 1.0) == 0.0
    assert geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert geometric_mean([]) is None


def test_metrics_of_a_run():
    records = [
        rec("a", "a/s0", ok(3.0, compile_ms=2.0)),          # a: best of two samples
        rec("a", "a/s1", ok(1.2, compile_ms=2.0, candidate_ms=2.5)),
        rec("b", "b", ok(0.5, compile_ms=0.25)),            # correct but slower
        rec("c", "c", EvalResult(status=Status.INCORRECT, reason="mismatch at [0]")),
        rec("d", "d", EvalResult(status=Status.TIMEOUT)),
        rec("e", "e", ok(1.6, flags=["speedup_over_10x"])),  # flagged: listed apart, in no score
        rec("f", "f", ok(4.0, timing_meaningful=False)),     # correct, timing not meaningful
    ]
    m = compute_metrics(records, problems=["a", "b", "c", "d", "e", "f", "g"])  # g: no candidate
    assert m.n_problems == 7 and m.n_samples == 7 and m.missing == ["g"]
    assert m.status_counts == {"ok": 5, "incorrect": 1, "compile_error": 0, "runtime_error": 0, "timeout": 1,
                               "crashed": 0, "rejected": 0}
    assert m.correctness_rate == pytest.approx(5 / 7)
    assert m.solved_rate == pytest.approx(3 / 7)  # a, b, f (e is correct but flagged)
    # eager speed-ups per problem: a=3.0 (best sample), b=0.5; e flagged; f untimed
    assert m.fast_p["eager"] == pytest.approx({0.0: 3 / 7, 1.0: 1 / 7, 1.5: 1 / 7, 2.0: 1 / 7})
    assert m.geomean_speedup["eager"] == pytest.approx((3.0 * 0.5) ** (1 / 2))
    assert m.median_speedup["eager"] == pytest.approx(1.75)
    assert m.timed_problems == {"eager": 2, "compile": 2}
    # compile: a = max(2.0/1.0, 2.0/2.5) = 2.0, b = 0.25/1.0
    assert m.fast_p["compile"] == pytest.approx({0.0: 3 / 7, 1.0: 1 / 7, 1.5: 1 / 7, 2.0: 0.0})
    assert m.geomean_speedup["compile"] == pytest.approx(math.sqrt(2.0 * 0.25))
    assert m.flagged_samples == 1 and m.untimed_correct == 1 and m.timing_unlocked == 0
    [flagged] = m.flagged
    assert (flagged.problem, flagged.candidate, flagged.speedup, flagged.flags) == ("e", "e", 1.6, ["speedup_over_10x"])
    assert m.median_roofline_share is None  # no result has a roofline
    outcome_a = m.problems[0]
    assert outcome_a.problem == "a" and outcome_a.best.candidate == "a/s0"
    assert m.to_json()["fast_p"]["eager"]["1.5"] == pytest.approx(1 / 7)
    assert m.to_json()["flagged"][0]["flags"] == ["speedup_over_10x"]


@pytest.mark.parametrize("flag", ["beyond_roofline", "speedup_over_10x", "work_left_on_side_stream",
                                  "timing_unlocked", "timing_unverified", "output_aliases_input",
                                  "degenerate_reference", "a_flag_added_later"])
def test_an_integrity_flag_keeps_a_sample_out_of_every_score(flag):
    m = compute_metrics([rec("a", "fast", ok(50.0, flags=[flag])), rec("a", "slow", ok(1.2))])
    assert m.fast_p["eager"][2.0] == 0.0 and m.geomean_speedup["eager"] == pytest.approx(1.2)
    assert m.problems[0].best.candidate == "slow" and [f.candidate for f in m.flagged] == ["fast"]
    assert m.timing_unlocked == (flag == "timing_unlocked")


def test_flags_that_say_how_a_result_passed_keep_it_in_the_scores():
    m = compute_metrics([rec("a", "a", ok(2.0, flags=["within_reference_error"]))])
    assert m.fast_p["eager"][1.5] == 1.0 and m.flagged == []


def test_problems_default_to_those_with_records_and_empty_runs():
    m = compute_metrics([rec("x", "x", ok(2.0))])
    assert m.n_problems == 1 and m.fast_p["eager"][1.0] == 1.0
    empty = compute_metrics([], problems=["p"])
    assert empty.correctness_rate == 0.0 and empty.solved_rate == 0.0 and empty.missing == ["p"]
    assert empty.geomean_speedup == {"eager": None, "compile": None}
    assert compute_metrics([]).n_problems == 0


def test_failed_sample_is_shown_when_none_is_correct():
    m = compute_metrics([rec("p", "s0", EvalResult(status=Status.CRASHED)),
                         rec("p", "s1", EvalResult(status=Status.INCORRECT))])
    assert not m.problems[0].solved and m.problems[0].best.candidate == "s0"


def test_roofline_share():
    records = [rec("a", "s0", ok(2.0, candidate_ms=2.0, roofline_ms=0.5)),
               rec("a", "s1", ok(4.0, candidate_ms=1.0, roofline_ms=0.5)),   # best of a: 0.5
               rec("b", "b", ok(1.0, candidate_ms=1.0, roofline_ms=0.1)),    # 0.1
               rec("c", "c", ok(1.0, candidate_ms=1.0, roofline_ms=0.8)),    # 0.8
               rec("d", "d", EvalResult(status=Status.INCORRECT, candidate_ms=1.0, roofline_ms=0.9))]
    assert compute_metrics(records).median_roofline_share == pytest.approx(0.5)
