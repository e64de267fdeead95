"""Benchmark metrics as KernelBench defines them, and beyond.

Definitions (docs/BENCH.md has the long form):

- A *sample* is one evaluated (problem, candidate) pair; a problem may have several samples.
- A *clean* sample is correct (``ok``) and carries no integrity flag (``EvalResult.clean``; the flags
  are in ``qimeng.kernels.result``). Only clean samples count in fast_p, the solved rate and the speed-up
  means; correct samples with integrity flags are listed apart (``BenchMetrics.flagged``): a flag asks
  for a look, it is not a win.
- ``speedup_over(result, b)`` = time of baseline ``b`` / time of the candidate, for a correct result with
  a meaningful timing; ``None`` otherwise. Against ``eager`` it is the harness's interleaved
  reference/candidate ratio (``EvalResult.speedup``); against ``compile`` it is
  ``baselines_ms["compile"] / candidate_ms``.
- A problem's speed-up over ``b`` is the best speed-up over ``b`` among its clean samples.
- ``fast_p`` over ``b`` = (problems with a clean sample whose speed-up over ``b`` is > p) / (all
  problems of the run, those without a candidate included). ``fast_0`` is the share of problems with
  a clean sample (a speed-up is always > 0), as in KernelBench.
- Geometric mean and median speed-up over ``b``: over the problems that have a speed-up over ``b``.
- Correctness rate: correct samples / samples. Counts per status are over samples.
- pass@k (Chen et al. 2021, unbiased): per problem with n samples of which c are clean,
  1 - C(n - c, k) / C(n, k); the mean over problems (those without a sample count 0), for each k of
  ``PASS_AT_K`` no larger than the fewest samples any sampled problem has.
- Roofline share of a clean, timed sample: ``roofline_ms / candidate_ms`` (1.0 = as fast as the
  hardware's memory/compute peak allows); per problem the best sample's; the median over problems.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qimeng.kernels.store import EvalRecord
from qimeng.core.verdict import Status
from qimeng.kernels.result import EvalResult, integrity_flags

FAST_P_THRESHOLDS: tuple[float, ...] = (0.0, 1.0, 1.5, 2.0)
BASELINES: tuple[str, ...] = ("eager", "compile")
PASS_AT_K: tuple[int, ...] = (1, 5, 10)


def speedup_over(result: EvalResult, baseline: str) -> float | None:
    """Baseline time / candidate time for a correct, meaningfully timed result; else ``None``."""
    if not result.correct or not result.timing_meaningful or not result.candidate_ms:
        return None
    if baseline == "eager" and result.speedup is not None:
        return result.speedup
    baseline_ms = result.baselines_ms.get(baseline)
    if baseline_ms is None and baseline == "eager":
        baseline_ms = result.ref_ms
    return baseline_ms / result.candidate_ms if baseline_ms else None


def roofline_share(result: EvalResult) -> float | None:
    """Roofline time / candidate time for a correct, meaningfully timed result with a roofline."""
    if not result.correct or not result.timing_meaningful or not result.candidate_ms:
        return None
    return result.roofline_ms / result.candidate_ms if result.roofline_ms else None


def fast_p(speedups: Iterable[float | None], n_problems: int, p: float, *, solved: int | None = None) -> float:
    """Share of ``n_problems`` whose speed-up is > ``p``. For ``p == 0`` pass ``solved`` (problems with a
    correct sample) so that correct but untimed problems count, as in KernelBench."""
    if n_problems == 0:
        return 0.0
    if p == 0 and solved is not None:
        return solved / n_problems
    return sum(1 for s in speedups if s is not None and s > p) / n_problems


def pass_at_k(n: int, c: int, k: int) -> float:
    """The chance that at least one of k samples drawn from n (c of them correct) is correct."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def geometric_mean(values: Sequence[float]) -> float | None:
    positive = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in positive) / len(positive)) if positive else None


@dataclass(frozen=True)
class ProblemOutcome:
    """The samples of one problem, summarised."""

    problem: str
    samples: list[EvalRecord]
    speedups: dict[str, float | None]  # best speed-up over each baseline among correct samples

    @property
    def solved(self) -> bool:
        """Whether the problem has a clean sample."""
        return any(r.result.clean for r in self.samples)

    @property
    def best(self) -> EvalRecord | None:
        """The sample shown for the problem: the fastest clean one (over eager), else the fastest
        correct one, else the first."""
        if not self.samples:
            return None
        return max(self.samples, key=lambda r: (r.result.clean, r.result.correct, speedup_over(r.result, "eager") or 0.0))


@dataclass(frozen=True)
class FlaggedSample:
    """A correct sample kept out of the scores by its integrity flags."""

    problem: str
    candidate: str
    speedup: float | None  # over eager, as measured
    flags: list[str]
    reason: str


@dataclass(frozen=True)
class BenchMetrics:
    n_problems: int
    n_samples: int
    missing: list[str]  # problems without any sample
    status_counts: dict[str, int]
    correctness_rate: float  # correct samples / samples
    solved_rate: float  # problems with a correct sample / problems
    fast_p: dict[str, dict[float, float]]  # baseline -> p -> share of problems
    geomean_speedup: dict[str, float | None]
    median_speedup: dict[str, float | None]
    timed_problems: dict[str, int]  # problems with a speed-up over the baseline
    flagged_samples: int  # correct samples with integrity flags, not counted in the scores
    timing_unlocked: int  # samples timed without the GPU's lock (their clock may have shared the GPU)
    untimed_correct: int  # correct samples whose timing is not meaningful (e.g. Triton interpreter)
    median_roofline_share: float | None  # over problems with a roofline: best roofline_ms / candidate_ms
    problems: list[ProblemOutcome] = field(repr=False)
    flagged: list[FlaggedSample] = field(default_factory=list, repr=False)
    pass_at_k: dict[int, float] = field(default_factory=dict)  # k -> mean over problems

    def to_json(self) -> dict[str, Any]:
        return {
            "n_problems": self.n_problems, "n_samples": self.n_samples, "missing": self.missing,
            "status_counts": self.status_counts, "correctness_rate": self.correctness_rate,
            "solved_rate": self.solved_rate,
            "fast_p": {b: {str(p): v for p, v in ps.items()} for b, ps in self.fast_p.items()},
            "geomean_speedup": self.geomean_speedup, "median_speedup": self.median_speedup,
            "timed_problems": self.timed_problems, "flagged_samples": self.flagged_samples,
            "timing_unlocked": self.timing_unlocked,
            "flagged": [{"problem": f.problem, "candidate": f.candidate, "speedup": f.speedup, "flags": f.flags,
                         "reason": f.reason} for f in self.flagged],
            "untimed_correct": self.untimed_correct, "median_roofline_share": self.median_roofline_share,
            "pass_at_k": {str(k): v for k, v in self.pass_at_k.items()},
        }


def compute_metrics(records: Sequence[EvalRecord], problems: Sequence[str] | None = None,
                    baselines: Sequence[str] = BASELINES,
                    thresholds: Sequence[float] = FAST_P_THRESHOLDS) -> BenchMetrics:
    """Metrics of a run's records. ``problems`` is the run's whole problem set (those without a sample
    count as unsolved); by default the problems that have records."""
    by_problem: dict[str, list[EvalRecord]] = {name: [] for name in (problems or [])}
    for record in records:
        by_problem.setdefault(record.problem, []).append(record)
    outcomes = [ProblemOutcome(name, samples, {b: _best(samples, b) for b in baselines})
                for name, samples in sorted(by_problem.items())]
    n = len(outcomes)
    solved = sum(o.solved for o in outcomes)
    statuses = Counter(r.result.status.value for r in records)
    per_baseline = {b: [o.speedups[b] for o in outcomes if o.speedups[b] is not None] for b in baselines}
    shares = [max(v) for v in ([s for s in map(roofline_share, (r.result for r in o.samples if r.result.clean))
                                if s is not None] for o in outcomes) if v]
    flagged = [FlaggedSample(r.problem, r.candidate, speedup_over(r.result, "eager"), integrity_flags(r.result.flags),
                             r.result.reason) for r in records if r.result.correct and not r.result.clean]
    return BenchMetrics(
        n_problems=n,
        n_samples=len(records),
        missing=[o.problem for o in outcomes if not o.samples],
        status_counts={s.value: statuses.get(s.value, 0) for s in Status},
        correctness_rate=sum(r.result.correct for r in records) / len(records) if records else 0.0,
        solved_rate=solved / n if n else 0.0,
        fast_p={b: {p: fast_p(per_baseline[b], n, p, solved=solved) for p in thresholds} for b in baselines},
        geomean_speedup={b: geometric_mean(per_baseline[b]) for b in baselines},
        median_speedup={b: statistics.median(v) if v else None for b, v in per_baseline.items()},
        timed_problems={b: len(v) for b, v in per_baseline.items()},
        flagged_samples=len(flagged),
        timing_unlocked=sum(1 for r in records if "timing_unlocked" in r.result.flags),
        untimed_correct=sum(1 for r in records if r.result.correct and not r.result.timing_meaningful),
        median_roofline_share=statistics.median(shares) if shares else None,
        problems=outcomes,
        flagged=flagged,
        pass_at_k=_pass_at_k(outcomes),
    )


def _pass_at_k(outcomes: Sequence[ProblemOutcome]) -> dict[int, float]:
    sampled = [len(o.samples) for o in outcomes if o.samples]
    if not sampled:
        return {}
    ks = [k for k in PASS_AT_K if k <= min(sampled)]
    return {k: sum(pass_at_k(len(o.samples), sum(r.result.clean for r in o.samples), k) if o.samples else 0.0
                   for o in outcomes) / len(outcomes) for k in ks}


def _best(samples: Iterable[EvalRecord], baseline: str) -> float | None:
    speedups = [s for s in (speedup_over(r.result, baseline) for r in samples if r.result.clean) if s is not None]
    return max(speedups) if speedups else None
