"""The winner is timed again in a fresh worker on fresh inputs, with torch.compile measured again in that
run's rounds, three-way (not read from the store's cache); a winner that fails there is dropped."""

from pathlib import Path

from qimeng.core.verdict import Status
from qimeng.kernels.engine import optimize as optimize_module
from qimeng.kernels.engine.search import Candidate, SearchOutcome
from qimeng.kernels.engine.steps import Schedule
from qimeng.kernels.result import EvalOptions, EvalResult


def _outcome() -> SearchOutcome:
    chosen = EvalResult(Status.OK, ref_ms=2.0, candidate_ms=1.0, speedup=2.0)
    return SearchOutcome(Candidate("lower", [], Schedule(), "source"), chosen)


def _run(monkeypatch, fresh: EvalResult) -> tuple[SearchOutcome, list[EvalOptions]]:
    import qimeng.kernels.harness.evaluate as harness

    calls: list[EvalOptions] = []

    def fake_evaluate(problem, candidate, options, store=None):
        assert store is None  # a store would hand the judge its cached torch.compile figure
        calls.append(options)
        assert candidate == "source"
        return fresh

    monkeypatch.setattr(harness, "evaluate", fake_evaluate)
    outcome = _outcome()
    options = EvalOptions(device="cuda", seed=0, baselines=("eager", "compile"))
    optimize_module._retime(Path("p.py"), outcome, options, object(), lambda m: None)
    return outcome, calls


def test_the_reported_figure_is_the_fresh_measurement(monkeypatch):
    fresh = EvalResult(Status.OK, ref_ms=2.0, candidate_ms=1.6, speedup=1.25)
    outcome, calls = _run(monkeypatch, fresh)
    assert outcome.best_result is fresh and outcome.best is not None
    assert len(calls) == 1 and calls[0].seed != 0  # other inputs than the search's
    assert calls[0].baselines == ("eager", "compile")  # torch.compile timed in the same fresh run ...
    assert calls[0].interleave_baselines  # ... in the same rounds as eager and the winner


def test_a_winner_that_fails_on_fresh_inputs_gives_way_to_the_reference(monkeypatch):
    outcome, _ = _run(monkeypatch, EvalResult(Status.INCORRECT, reason="max abs error 3"))
    assert outcome.best is None and outcome.best_result is None


def test_the_report_says_which_measurement_produced_each_figure():
    from qimeng.kernels.engine.optimize_report import render_report

    final = EvalResult(Status.OK, ref_ms=2.0, candidate_ms=1.0, speedup=2.0, timing_trials=50,
                       baselines_ms={"eager": 2.0, "compile": 1.5},
                       baselines_from={"eager": "rounds", "compile": "rounds"},
                       speedup_ci={"eager": [1.8, 2.2], "compile": [1.3, 1.6]})
    text = render_report(Path("p.py"), None, None, [], [], final, {}, None, False, "strict", False,
                         EvalResult(Status.OK, speedup=2.3), None)
    assert ("- measured by: eager in the same rounds (ours 1.80-2.20x of it, 95%); compile in the same rounds "
            "(ours 1.30-1.60x of it, 95%) (50 timed rounds)") in text
    assert "2.00x vs eager, 1.50x vs torch.compile" in text and "said 2.30x vs eager" in text
