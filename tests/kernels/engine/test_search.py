"""Search selection: only verified candidates are kept, and only when they beat the incumbent."""

from qimeng.core.verdict import Status
from qimeng.kernels.result import EvalResult
from qimeng.kernels.engine.search import (Candidate, SearchOutcome, better, expand, run_search, select,
                                           verification_order)
from qimeng.kernels.engine.steps import FusePointwise, Schedule


def _cand(name: str, main: bool = True, schedule: Schedule | None = None) -> Candidate:
    return Candidate(name, [FusePointwise("a", "b")], schedule or Schedule(), f"src {name}", main_line=main)


def _ok(ms: float, ref: float = 1.0, timed: bool = True) -> EvalResult:
    return EvalResult(Status.OK, ref_ms=ref, candidate_ms=ms, speedup=ref / ms, timing_meaningful=timed)


def test_wrong_or_slow_candidates_never_replace_the_reference():
    outcome = SearchOutcome(None, None)
    select(outcome, [_cand("wrong"), _cand("slow"), _cand("noise")],
           [EvalResult(Status.INCORRECT, reason="mismatch"), _ok(1.2), _ok(0.99)])
    assert outcome.best is None and not any(t.accepted for t in outcome.trials)


def test_the_fastest_verified_candidate_wins():
    outcome = SearchOutcome(None, None)
    select(outcome, [_cand("a"), _cand("b", main=False), _cand("c")], [_ok(0.5), _ok(0.3), _ok(0.4)])
    assert outcome.best.stage == "b"
    assert better(_ok(0.2), outcome.best_result) and not better(_ok(0.299), outcome.best_result)


def test_untimed_runs_keep_the_deepest_verified_main_line():
    outcome = SearchOutcome(None, None)
    select(outcome, [_cand("lower"), _cand("reduce"), _cand("alt", main=False)],
           [_ok(1, timed=False), _ok(1, timed=False), _ok(1, timed=False)])
    assert outcome.best.stage == "reduce"


def test_expand_follows_the_main_line_and_skips_duplicates_and_empty_plans():
    calls = []

    def propose(state, stage):
        calls.append((state.precision, stage))
        new = Schedule(precision=stage)
        return [(stage, [], new), (stage, [], Schedule(precision="dup"))]

    def render(schedule):
        return ("" if schedule.precision == "empty" else f"src {schedule.precision}"), ""

    cands = expand(Schedule(), ["one", "empty", "strategy"], propose, render)
    assert [c.stage for c in cands] == ["one", "one", "strategy"]
    assert [c.main_line for c in cands] == [True, False, False]
    assert calls == [("strict", "one"), ("one", "empty"), ("one", "strategy")]


def test_an_untimed_search_verifies_the_main_line_only():
    def propose(state, stage):  # a main-line proposal and an alternative per stage
        return [(stage, [], Schedule(precision=stage)), (stage, [], Schedule(precision=f"{stage} alt"))]

    def render(schedule):
        return f"src {schedule.precision}", ""

    asked: list[list[str]] = []

    def verify(cands):
        asked.append([c.source for c in cands])
        return [_ok(1, timed=False) for _ in cands]

    outcome = run_search(Schedule(), ["one", "two"], propose, render, verify, timed=False)
    assert asked == [["src one", "src two"]] and outcome.best.source == "src two"
    run_search(Schedule(), ["one", "two"], propose, render, verify)
    assert asked[1] == ["src two", "src one", "src one alt", "src two alt"]  # timed: the main line from its end, then every alternative


def test_the_cuda_graphs_are_verified_first_vendor_first_then_the_main_line_from_its_end_then_the_rest():
    templated = Schedule(templates=(("mm", "gemm"),))
    cands = [_cand("lower"), _cand("reduce"), _cand("templates"), _cand("templates", main=False),
             _cand("strategy", main=False), _cand("graph", main=False, schedule=templated),
             _cand("graph", main=False)]
    ordered = verification_order(cands)
    assert [(c.stage, c.main_line) for c in ordered] == [
        ("graph", False), ("graph", False), ("templates", True), ("reduce", True), ("lower", True),
        ("templates", False), ("strategy", False)]
    assert ordered[0] is cands[6] and ordered[1] is cands[5]  # the graph around the vendor calls first
    assert verification_order(cands, timed=False) == cands[:3]  # untimed: the main line in stage order
