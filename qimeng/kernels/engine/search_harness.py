"""How a search of one problem meets the harness and the store (optimize's and each split piece's).

The evaluation options a candidate is verified (and on the GPU timed) with, the strict fp32 template
variant per K the expert policy takes, each trial put in the store, and its line in the log.
"""

from __future__ import annotations

from typing import Callable

from qimeng.kernels.engine.capture import Graph
from qimeng.kernels.engine.search import Candidate, Trial
from qimeng.kernels.engine.steps import PRECISION_TOLERANCES
from qimeng.kernels.engine.templates.plan import template_ks
from qimeng.kernels.engine.templates.strict_check import measure_strict
from qimeng.kernels.result import EvalOptions, EvalResult


def eval_options(device: str, small: bool, compare_compile: bool, precision: str = "strict") -> EvalOptions:
    """The harness's options for the candidates of a search on ``device``."""
    atol, rtol = PRECISION_TOLERANCES[precision] or (None, None)
    if device == "cpu":  # verified, not timed: under the Triton interpreter a time means nothing
        return EvalOptions(device="cpu", correctness_trials=2, timing_trials=0, warmup=0, small=small,
                           baselines=("eager",), timeout_s=600.0, atol=atol, rtol=rtol)
    # no profiler pass (own_kernel_share): the candidates are our own kernels, and it costs ~5 s per worker
    return EvalOptions(device=device, correctness_trials=3, timing_trials=50, warmup=5, small=small,
                       baselines=("eager", "compile") if compare_compile else ("eager",), timeout_s=300.0,
                       kernel_share=False, atol=atol, rtol=rtol)


def strict_measured(graph: Graph, precision: str, device: str, on_cpu: bool,
                    log: Callable[[str], None]) -> dict[int, str]:
    """Under strict on the GPU: 3xTF32's error against float64 at each K a GEMM/convolution template takes,
    measured in a sandboxed job (the variant per K). Under the interpreter TF32 is not emulated: nothing."""
    ks = template_ks(graph)
    if precision != "strict" or on_cpu or not ks:
        return {}
    measured, error = measure_strict(ks, device)
    if error:
        log(f"{error}; the harness's verification decides between 3xTF32 and ieee")
    for k, choice in sorted(measured.items()):
        log(f"strict fp32 GEMM template, {choice.describe(k)}")
    return {k: c.variant for k, c in measured.items()}


def store_trial(store, run: str, problem_hash: str, cand: Candidate, result: EvalResult) -> None:
    """The candidate (with its lineage) and each of its steps' evaluation, in the store (none: nothing)."""
    if store is None:
        return
    lineage = {"stage": cand.stage, "steps": [s.to_json() for s in cand.steps], "schedule": cand.schedule.to_json()}
    chash = store.put_candidate(problem_hash, cand.source, lineage)
    for step in cand.steps:
        store.put_step(run, problem_hash, step.to_json(), chash, result)


def describe_trial(trial: Trial) -> str:
    """One log line: the trial's stage, note, first steps and verdict."""
    r = trial.result
    steps = ", ".join(s.describe() for s in trial.candidate.steps[:3])
    more = f" (+{len(trial.candidate.steps) - 3} more)" if len(trial.candidate.steps) > 3 else ""
    if r.correct:
        timing = (f"{r.candidate_ms:.4f} ms, {r.speedup:.2f}x vs eager" if r.timing_meaningful and r.speedup
                  else "verified (timing not meaningful under the interpreter)")
        verdict = ("accepted" if trial.accepted else "kept previous") + f": {timing}"
    else:
        verdict = f"rejected: {r.status.value}: {r.reason[:160]}"
    return f"[{trial.candidate.stage}] {trial.candidate.note}; {steps}{more} -> {verdict}"
