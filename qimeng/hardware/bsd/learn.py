"""Learning a multi-output combinational circuit: one diagram per output bit, checked and refined.

After learning, accuracy is measured on check vectors (every input vector when N <= 20, else
fresh random ones); output bits with errors are learned again with twice the samples and the
counterexamples as hints, until the target accuracy is met or the rounds run out. The reported
accuracy is measured on vectors no round learned from (exhaustive, or a fresh random draw).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
from rich.progress import Progress

from qimeng.hardware.bsd.bits import all_vectors
from qimeng.hardware.bsd.diagram import Diagram
from qimeng.hardware.bsd.oracle import Oracle
from qimeng.hardware.bsd.sampling import SamplingPlan, learn_bit

EXHAUSTIVE_CHECK_MAX_INPUTS = 20
MAX_HINTS = 512


@dataclass
class LearnResult:
    diagrams: list[Diagram]
    accuracy: float  # fraction of check vectors on which every output bit is right
    bit_accuracy: list[float]
    check_vectors: int
    exhaustive: bool
    rounds: int
    learn_seconds: float
    oracle_queries: int
    history: list[dict] = field(default_factory=list)

    @property
    def n_nodes(self) -> int:
        return sum(d.n_nodes for d in self.diagrams)


def check_vectors(n: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Every vector when n <= 20 (exhaustive), else ``count`` uniform random vectors."""
    if n <= EXHAUSTIVE_CHECK_MAX_INPUTS:
        return all_vectors(n), True
    return rng.integers(0, 2, size=(count, n), dtype=np.uint8), False


def evaluate(diagrams: list[Diagram], x: np.ndarray) -> np.ndarray:
    return np.stack([d.evaluate(x) for d in diagrams], axis=1)


def learn_circuit(
    oracle: Oracle,
    plan: SamplingPlan = SamplingPlan(),
    target: float | None = None,
    max_rounds: int = 4,
    check_count: int = 100_000,
    seed: int = 0,
    progress: bool = False,
) -> LearnResult:
    """Learn every output bit of ``oracle``; ``target`` defaults to 1.0 (exhaustive) or 0.9999."""
    n, m = oracle.n_inputs, oracle.n_outputs
    rng = np.random.default_rng(seed)
    check_rng = np.random.default_rng(seed + 1_000_003)
    exhaustive = n <= EXHAUSTIVE_CHECK_MAX_INPUTS
    target = (1.0 if exhaustive else 0.9999) if target is None else target
    start = time.perf_counter()
    queries_before = getattr(oracle, "queries", 0)
    hints = [np.zeros((0, n), np.uint8) for _ in range(m)]
    plans = [plan] * m
    diagrams: list[Diagram | None] = [None] * m
    todo = list(range(m))
    history: list[dict] = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("learning output bits", total=m)
        for round_ in range(1, max_rounds + 1):
            for j in todo:
                bit_oracle = lambda x, j=j: oracle(x)[:, j]  # noqa: E731
                diagrams[j] = learn_bit(bit_oracle, n, plans[j], rng, hints[j])
                bar.advance(task)
            x, _ = check_vectors(n, check_count, check_rng)
            wrong = evaluate(diagrams, x) != oracle(x)
            accuracy = 1.0 - wrong.any(axis=1).mean()
            history.append({"round": round_, "relearned": list(todo), "accuracy": float(accuracy)})
            todo = [j for j in range(m) if wrong[:, j].any()]
            if accuracy >= target or not todo or round_ == max_rounds:
                break
            for j in todo:
                cex = x[wrong[:, j]]
                cex = cex[rng.permutation(len(cex))[: MAX_HINTS // 2]]
                hints[j] = np.concatenate([cex, hints[j]])[:MAX_HINTS]
                plans[j] = replace(plans[j], samples=plans[j].samples * 2, min_samples=plans[j].min_samples * 2)
            bar.update(task, total=m + sum(len(h["relearned"]) for h in history[1:]) + len(todo))
    learn_seconds = time.perf_counter() - start
    if not exhaustive:  # report on vectors no refinement saw
        x, _ = check_vectors(n, check_count, np.random.default_rng(seed + 2_000_003))
        wrong = evaluate(diagrams, x) != oracle(x)
        accuracy = 1.0 - wrong.any(axis=1).mean()
    return LearnResult(
        diagrams=diagrams,
        accuracy=float(accuracy),
        bit_accuracy=[float(a) for a in 1.0 - wrong.mean(axis=0)],
        check_vectors=len(x),
        exhaustive=exhaustive,
        rounds=len(history),
        learn_seconds=learn_seconds,
        oracle_queries=getattr(oracle, "queries", 0) - queries_before,
        history=history,
    )
