"""Each candidate's loss, as optimize's result and report say it: failed, flagged, slower, superseded."""

from qimeng.core.verdict import Status
from qimeng.kernels.engine.losses import candidate_outcomes
from qimeng.kernels.engine.search import Candidate, SearchOutcome, select
from qimeng.kernels.engine.steps import FusePointwise, Schedule
from qimeng.kernels.result import EvalResult


def _cand(name: str, main: bool = True) -> Candidate:
    return Candidate(name, [FusePointwise("a", "b")], Schedule(), f"src {name}", note=f"{name} note", main_line=main)


def _ok(ms: float, ref: float = 1.0, flags: list[str] | None = None) -> EvalResult:
    return EvalResult(Status.OK, ref_ms=ref, candidate_ms=ms, speedup=ref / ms, flags=flags or [])


def test_every_loser_says_why_with_its_ms_against_the_reference():
    outcome = SearchOutcome(None, None)
    cands = [_cand("wrong"), _cand("slow"), _cand("flagged"), _cand("first"), _cand("second"), _cand("close")]
    select(outcome, cands, [EvalResult(Status.INCORRECT, reason="max abs error 3"), _ok(1.5, ref=1.2),
                            _ok(1.3, flags=["timing_unverified", "within_reference_error"]), _ok(0.8), _ok(0.5),
                            _ok(0.495)])
    out = candidate_outcomes(outcome.trials, outcome.best)
    assert outcome.best is cands[4]
    assert [o.kept for o in out] == [False, False, False, False, True, False]
    assert out[0].why == "failed: incorrect: max abs error 3"
    assert out[1].why.startswith("slower: 1.5000 ms vs reference 1.2000 ms (0.80x")
    assert out[2].why.startswith("slower: 1.3000 ms vs reference 1.0000 ms")
    assert out[2].why.endswith("(flagged: timing_unverified)")  # integrity flags only, not the benign ones
    assert out[3].why == "superseded by #4: 0.5000 ms vs 0.8000 ms"
    assert out[4].why == ""
    assert out[5].why.startswith("slower than #4: 0.4950 ms vs 0.5000 ms")


def test_a_noise_level_win_over_the_reference_is_reported_as_slower():
    outcome = SearchOutcome(None, None)
    select(outcome, [_cand("noise")], [_ok(0.99, ref=1.0)])
    (o,) = candidate_outcomes(outcome.trials, outcome.best)
    assert outcome.best is None and o.why.startswith("slower: 0.9900 ms vs reference 1.0000 ms (1.01x")
    assert o.to_json()["ms"] == 0.99 and o.to_json()["ref_ms"] == 1.0


def test_a_winner_dropped_at_the_recheck_says_so():
    outcome = SearchOutcome(None, None)
    select(outcome, [_cand("a")], [_ok(0.5)])
    (o,) = candidate_outcomes(outcome.trials, None)  # the re-check dropped it: the reference was written
    assert not o.kept and o.why.startswith("dropped")
