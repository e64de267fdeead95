"""The harness's own clock around the timed rounds bounds what the candidate's worker may claim.

The harness times every round from its command to the answer, on the judge's side and on the
candidate's. On the judge's side the difference between that wall time and the judge's own timing of
the call is the round's overhead (making inputs, launching, synchronising, copying the output to
shared memory, the messages): the same work the candidate's worker does around its call. So the
harness's estimate of a candidate's call is its round's wall time minus the judge's overhead. A
candidate whose own clock claims much less than that (a patched timer, work finished after the end
event or outside the timed call) is rejected; one that claims more time than its rounds took is
rejected too (a timer that lies). Medians throughout: one slow round (a scheduler hiccup) moves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from qimeng.kernels.harness.stats import quantile

SLACK = 1.5  # the candidate's claimed time may be this many times below the harness's estimate
ALLOWANCE_MS = 0.05  # plus this, and three interquartile ranges of the judge's own overhead


@dataclass(frozen=True)
class Rounds:
    """The timed rounds of one side: each call's time by its worker's own clock, and each round's
    wall time by the harness's clock (command sent to answer received)."""

    claimed_ms: list[float]
    wall_ms: list[float]


def overhead_ms(judge: Rounds) -> tuple[float, float]:
    """(median, interquartile range) of the judge's per-round overhead: wall time minus its timed call."""
    extra = [w - c for w, c in zip(judge.wall_ms, judge.claimed_ms)]
    return quantile(extra, 0.5), quantile(extra, 0.75) - quantile(extra, 0.25)


def estimate_ms(judge: Rounds, worker: Rounds) -> float:
    """The harness's estimate of the candidate's call: its median round minus the judge's overhead."""
    return max(quantile(worker.wall_ms, 0.5) - overhead_ms(judge)[0], 0.0)


def check(judge: Rounds, worker: Rounds) -> str | None:
    """Why the candidate's own timings cannot be right, if they cannot."""
    claimed_total, wall_total = sum(worker.claimed_ms), sum(worker.wall_ms)
    if claimed_total > wall_total * 1.02 + 1.0:
        return (f"the candidate's worker claims {claimed_total:.3f} ms of timed calls in rounds that took "
                f"{wall_total:.3f} ms by the harness's clock")
    claimed = quantile(worker.claimed_ms, 0.5)
    estimate = estimate_ms(judge, worker)
    allowed = claimed * SLACK + ALLOWANCE_MS + 3.0 * overhead_ms(judge)[1]
    if estimate > allowed:
        return (f"the candidate's worker claims {claimed:.4f} ms per call, but by the harness's clock its "
                f"rounds took {estimate:.4f} ms beyond the judge's overhead (at most {allowed:.4f} ms allowed)")
    return None
