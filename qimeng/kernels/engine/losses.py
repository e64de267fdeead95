"""Why each candidate of one ``qimeng optimize`` run was not the one written: failed, slower than the
reference (its ms against the reference's ms in its own run), slower than the incumbent, superseded
by a later winner, or dropped at the re-check; with the harness's integrity flags of its result, if
any. Read from the trials in the order the search selected them."""

from __future__ import annotations

from dataclasses import dataclass

from qimeng.kernels.engine.search import IMPROVEMENT, Candidate, Trial, speed
from qimeng.kernels.result import integrity_flags


@dataclass(frozen=True)
class CandidateOutcome:
    """One candidate, as the result JSON and report.md show it."""

    index: int
    stage: str
    note: str
    status: str  # the verdict's status value
    ms: float | None  # the candidate's time (None when failed or untimed)
    ref_ms: float | None  # the reference's time in the candidate's own run
    kept: bool  # the candidate written to model_new.py
    why: str  # why it was not written ("" for the one that was)

    def to_json(self) -> dict:
        return {"index": self.index, "stage": self.stage, "note": self.note, "status": self.status, "ms": self.ms,
                "ref_ms": self.ref_ms, "kept": self.kept, "why": self.why}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f} ms"


def _why(trial: Trial, incumbent: tuple[int, Trial] | None, later: tuple[int, Trial] | None) -> str:
    r = trial.result
    if not r.correct:
        return f"failed: {r.status.value}: {r.reason[:200]}"
    flags = integrity_flags(r.flags)
    reason = _timed_why(trial, incumbent, later)
    return f"{reason} (flagged: {', '.join(flags)})" if flags else reason


def _timed_why(trial: Trial, incumbent: tuple[int, Trial] | None, later: tuple[int, Trial] | None) -> str:
    r = trial.result
    ms = speed(r)
    if ms is None:
        if not trial.candidate.main_line:
            return "verified, untimed (interpreter): an alternative cannot be told apart, the main line was kept"
        return "verified, untimed (interpreter): a later main-line candidate was kept"
    if trial.accepted:
        j, winner = later if later is not None else (None, None)
        if winner is None:
            return "dropped: it failed the re-check in a fresh worker on fresh inputs"
        return f"superseded by #{j}: {_ms(speed(winner.result))} vs {_ms(ms)}"
    if r.ref_ms is not None and not ms * IMPROVEMENT < r.ref_ms:
        return (f"slower: {_ms(ms)} vs reference {_ms(r.ref_ms)} ({r.ref_ms / ms:.2f}x; "
                f"it must beat the reference by {IMPROVEMENT:.2f}x)")
    if incumbent is not None:
        j, best = incumbent
        return f"slower than #{j}: {_ms(ms)} vs {_ms(speed(best.result))} (it must beat it by {IMPROVEMENT:.2f}x)"
    return f"not kept: {_ms(ms)} vs reference {_ms(r.ref_ms)}"


def candidate_outcomes(trials: list[Trial], written: Candidate | None) -> list[CandidateOutcome]:
    """Each trial's outcome; ``written`` is the candidate in model_new.py (None: the reference)."""
    accepted = [(i, t) for i, t in enumerate(trials) if t.accepted]
    out = []
    for i, t in enumerate(trials):
        incumbent = next(((j, a) for j, a in reversed(accepted) if j < i), None)
        later = next(((j, a) for j, a in accepted if j > i), None)
        kept = written is not None and t.candidate is written
        r = t.result
        out.append(CandidateOutcome(i, t.candidate.stage, t.candidate.note, r.status.value,
                                    speed(r), r.ref_ms, kept, "" if kept else _why(t, incumbent, later)))
    return out
