"""Search over macro steps: propose, render, verify (harness), time, keep the best verified.

The expert stages do not depend on measurements, so the search first walks them without evaluating
(each stage's first proposal is the main line; the others are alternatives branching off it), then
verifies and times every candidate in ONE ``evaluate_many`` call (one sandboxed worker launch), and
keeps the best verified one. A candidate that fails verification is rejected, never used. The
reference (the unfused module) is always a valid answer, so the result is never wrong and never
slower than eager beyond noise. Tuning adds a second batch on top of the best candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from qimeng.kernels.result import EvalResult
from qimeng.kernels.engine.steps import Schedule, Step

# A candidate must beat the incumbent by this factor to replace it (timing noise guard).
IMPROVEMENT = 1.02


@dataclass
class Candidate:
    stage: str
    steps: list[Step]  # the steps this candidate adds to its parent
    schedule: Schedule
    source: str
    note: str = ""  # kernels made, PyTorch calls kept
    main_line: bool = True  # on the stage-by-stage main line (else an alternative branching off it)


@dataclass
class Trial:
    candidate: Candidate
    result: EvalResult
    accepted: bool = False


@dataclass
class SearchOutcome:
    best: Candidate | None  # None: the reference (unfused PyTorch) stays best
    best_result: EvalResult | None
    trials: list[Trial] = field(default_factory=list)

    def accept(self, trial: Trial) -> None:
        trial.accepted = True
        self.best, self.best_result = trial.candidate, trial.result


def speed(result: EvalResult) -> float | None:
    """Milliseconds of a verified, meaningfully timed candidate (None otherwise)."""
    if not result.correct or not result.timing_meaningful or result.candidate_ms is None:
        return None
    return result.candidate_ms


def better(new: EvalResult, old: EvalResult | None) -> bool:
    """Is verified ``new`` better than ``old`` (None: the reference, timed in ``new``'s own run)?"""
    if not new.correct:
        return False
    new_ms = speed(new)
    if new_ms is None:  # untimed (interpreter): a verified candidate further down the line is preferred
        return True
    if old is None:
        return new.ref_ms is None or new_ms * IMPROVEMENT < new.ref_ms
    old_ms = speed(old)
    return old_ms is None or new_ms * IMPROVEMENT < old_ms


Proposer = Callable[[Schedule, str], list[tuple[str, list[Step], Schedule]]]


ALTERNATIVE_STAGES = ("strategy", "graph")  # stages whose proposals are all alternatives to each other


def expand(initial: Schedule, stages: list[str], propose: Proposer,
           render: Callable[[Schedule], tuple[str, str]]) -> list[Candidate]:
    """Walk the stages without measuring: the main line and the alternatives branching off it."""
    out: list[Candidate] = []
    state = initial
    seen: set[str] = set()
    for stage in stages:
        for i, (name, steps, schedule) in enumerate(propose(state, stage)):
            source, note = render(schedule)
            if not source or source in seen:  # no kernel at all, or a duplicate
                continue
            seen.add(source)
            main = i == 0 and stage not in ALTERNATIVE_STAGES
            out.append(Candidate(name, steps, schedule, source, note, main_line=main))
            if main:
                state = schedule
    return out


FIRST_ALTERNATIVES = ("graph",)  # alternatives verified before the main line: they may win by most


def verification_order(candidates: list[Candidate], timed: bool = True) -> list[Candidate]:
    """The order the budget takes candidates in. Timed: the CUDA-graph alternatives first (the policy
    proposes them only for a forward of many launches, whose host time they remove: on the H200 a 200-layer
    DenseNet's 60 s went to its first main-line candidate, 1105 kernels at 0.63x, before any graph was
    tried), the one around the vendor calls before the one with templates (a template may be slower than the
    vendor's kernel, and it compiles more); then the main line from its end back (the most fused first);
    then the other alternatives in stage order. Untimed: the main line in stage order (only it is verified)."""
    main = [c for c in candidates if c.main_line]
    if not timed:
        return main
    graphs = sorted((c for c in candidates if not c.main_line and c.stage in FIRST_ALTERNATIVES),
                    key=lambda c: bool(c.schedule.templates))
    rest = [c for c in candidates if not c.main_line and c.stage not in FIRST_ALTERNATIVES]
    return graphs + main[::-1] + rest


def select(outcome: SearchOutcome, candidates: list[Candidate], results: list[EvalResult]) -> None:
    """Record the trials in order and accept each verified one that beats the incumbent."""
    for cand, result in zip(candidates, results):
        trial = Trial(cand, result)
        outcome.trials.append(trial)
        if not result.correct:
            continue
        untimed = speed(result) is None
        if untimed and not cand.main_line:
            continue  # without timing, alternatives cannot be told apart: keep the main line
        if better(result, outcome.best_result if outcome.best is not None else None):
            outcome.accept(trial)


def run_search(initial: Schedule, stages: list[str], propose: Proposer,
               render: Callable[[Schedule], tuple[str, str]],
               verify: Callable[[list[Candidate]], list[EvalResult]],
               on_trial: Callable[[Trial], None] | None = None, timed: bool = True) -> SearchOutcome:
    """Expand the stages, verify every candidate in one batch, keep the best verified. Untimed
    (``timed`` False: the interpreter) only the main line is verified: no alternative could be chosen."""
    outcome = SearchOutcome(None, None)
    candidates = verification_order(expand(initial, stages, propose, render), timed)
    if not candidates:
        return outcome
    select(outcome, candidates, verify(candidates))
    if on_trial is not None:
        for trial in outcome.trials:
            on_trial(trial)
    return outcome
