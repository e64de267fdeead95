"""`qimeng generate` results in the kernels store, as a bench run: pass@k and fast_p from the same tables.

One run (``--run``, default ``generate-MODEL-DEVICE``) collects the problems generated with it; each sample
is one evaluation (candidate ``sampleS``) holding the harness's result of its final answer: the verified
round, else its last round (an answer with no code block is stored as ``rejected``). A sample whose
requests failed has no answer and no row. ``qimeng report RUN`` then computes the metrics as for bench.
"""

from __future__ import annotations

import re
from pathlib import Path

from qimeng.core.verdict import Status
from qimeng.kernels.generate.prompt import NO_CODE
from qimeng.kernels.generate.run import NO_CODE_STATUS, Attempt, GenerateOptions, GenerateResult
from qimeng.kernels.harness.problem import problem_hash
from qimeng.kernels.result import EvalResult
from qimeng.kernels.store import Store


def default_run(model: str, device: str) -> str:
    return "generate-" + re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}-{device.split(':')[0]}")


def final_attempts(result: GenerateResult) -> list[Attempt]:
    """Each sample's final answer: its verified round, else its last round that produced an answer."""
    finals: dict[int, Attempt] = {}
    for attempt in result.attempts:
        if attempt.status == NO_CODE_STATUS or attempt.result is not None:
            if not (attempt.sample in finals and finals[attempt.sample].verified):
                finals[attempt.sample] = attempt
    return [finals[s] for s in sorted(finals)]


def record_samples(store: Store, run: str, problem: Path, result: GenerateResult, options: GenerateOptions,
                   model: str) -> int:
    """Store each sample's final answer in ``run``; returns how many were stored."""
    source = problem.read_text()
    phash = problem_hash(problem, options.eval.small)
    config = {"kind": "generate", "model": model, "device": options.eval.device, "samples": options.samples,
              "debug_rounds": options.debug_rounds, "small": options.eval.small,
              "timing_trials": options.eval.timing_trials, "insights": options.insights}
    store.put_run(run, config)
    finals = final_attempts(result)
    for attempt in finals:
        evaluated = attempt.result or EvalResult(Status.REJECTED, reason=NO_CODE, device=options.eval.device,
                                                 problem_hash=phash)
        store.record_eval(run, problem.stem, f"sample{attempt.sample}", evaluated, problem_source=source,
                          problem_path=str(problem), candidate_source=attempt.source)
    return len(finals)
