"""Greedy search over macro steps: propose, render, verify (harness), time, keep the best verified.

Each stage of the policy yields proposals; all proposals of a stage are verified together (one
``evaluate_many`` call, so few worker launches), the best verified one becomes the new state, and a
failed proposal is simply rejected. The reference (the unfused module) is always a valid answer, so
the outcome is never slower than eager beyond noise and never wrong.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from qimeng.kernels.result import EvalResult
from qimeng.kernels.steps import Schedule, Step

# A candidate must beat the incumbent by this factor to replace it (timing noise guard).
IMPROVEMENT = 1.02


@dataclass
class Candidate:
    stage: str
    steps: list[Step]
    schedule: Schedule
    source: str
    note: str = ""  # what the plan kept in PyTorch, etc.


@dataclass
class Trial:
    candidate: Candidate
    result: EvalResult
    accepted: bool = False
    wall_s: float = 0.0


@dataclass
class SearchOutcome:
    best: Candidate | None  # None: the reference (unfused PyTorch) stays best
    best_result: EvalResult | None
    trials: list[Trial] = field(default_factory=list)
    trajectory: list[Trial] = field(default_factory=list)  # accepted trials, in order


def speed(result: EvalResult) -> float | None:
    """Milliseconds of a verified, meaningfully timed candidate (None otherwise)."""
    if not result.correct or not result.timing_meaningful or result.candidate_ms is None:
        return None
    return result.candidate_ms


def better(new: EvalResult, old: EvalResult | None) -> bool:
    """Is ``new`` (verified) better than ``old`` (None: the reference)?"""
    if not new.correct:
        return False
    new_ms = speed(new)
    if new_ms is None:  # untimed (interpreter): a verified later stage is preferred
        return True
    if old is None:
        return new.ref_ms is None or new_ms * IMPROVEMENT < new.ref_ms
    old_ms = speed(old)
    return old_ms is None or new_ms * IMPROVEMENT < old_ms


def run_search(initial: Schedule, stages: list[str],
               propose: Callable[[Schedule, str], list[tuple[str, list[Step], Schedule]]],
               render: Callable[[Schedule], tuple[str, str]],
               verify: Callable[[list[Candidate]], list[EvalResult]],
               budget_s: float, on_trial: Callable[[Trial], None] | None = None) -> SearchOutcome:
    """Walk the stages greedily under ``budget_s`` seconds and return the best verified candidate."""
    start = time.monotonic()
    outcome = SearchOutcome(None, None)
    state = initial
    for stage in stages:
        if time.monotonic() - start > budget_s and outcome.trials:
            break
        candidates = []
        for name, steps, schedule in propose(state, stage):
            source, note = render(schedule)
            candidates.append(Candidate(name, steps, schedule, source, note))
        if not candidates:
            continue
        t0 = time.monotonic()
        results = verify(candidates)
        wall = (time.monotonic() - t0) / len(candidates)
        best_here: Trial | None = None
        for cand, result in zip(candidates, results):
            trial = Trial(cand, result, wall_s=wall)
            outcome.trials.append(trial)
            if better(result, outcome.best_result if outcome.best is not None else None) and (
                    best_here is None or better(result, best_here.result)):
                best_here = trial
        if best_here is not None:
            best_here.accepted = True
            outcome.best, outcome.best_result = best_here.candidate, best_here.result
            outcome.trajectory.append(best_here)
            state = best_here.candidate.schedule
        elif stage == stages[0]:
            state = _keep_trying(candidates, results, state)
        for trial in outcome.trials[-len(candidates):]:
            if on_trial is not None:
                on_trial(trial)
    return outcome


def _keep_trying(candidates: list[Candidate], results: list[EvalResult], state: Schedule) -> Schedule:
    """When the first stage fails verification, later stages start from its schedule only if it was
    correct (merely slower); a wrong first stage leaves the reference as the state."""
    for cand, result in zip(candidates, results):
        if result.correct:
            return cand.schedule
    return state
