"""Learning a multi-output combinational circuit: one shared diagram of all output bits, checked and refined.

With at most ``exact_max_inputs`` inputs (24), asking the oracle every vector once costs fewer
queries than sampling does (an 8-bit adder: 131,072 against about 665,000), so the diagram is built
exactly from the truth table (:mod:`qimeng.hardware.bsd.exact`), then sifted;
wider functions are learned by sampling (:mod:`qimeng.hardware.bsd.sampling`).

After learning, accuracy is measured on check vectors (every input vector when N <= 20, else
fresh random ones); while some output bit is wrong, the diagram is learned again with twice the
samples, the counterexamples as hints and the previous round's (sifted) variable order, until the
target accuracy is met or the rounds run out. The reported
accuracy is measured on vectors no round learned from (exhaustive, or a fresh random draw).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from qimeng.hardware.bsd.bits import all_vectors
from qimeng.hardware.bsd.diagram import Diagram
from qimeng.hardware.bsd.exact import EXACT_MAX_INPUTS, EXACT_MAX_TABLE_BYTES, exact_diagram
from qimeng.hardware.bsd.oracle import Oracle
from qimeng.hardware.bsd.reorder import sift
from qimeng.hardware.bsd.sampling import SamplingPlan, learn_diagram

EXHAUSTIVE_CHECK_MAX_INPUTS = 20
MAX_HINTS = 512
SIFT_MAX_NODES = 5_000  # larger diagrams keep the learned order (sifting is Python, per node)


@dataclass
class LearnResult:
    diagram: Diagram
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
        return self.diagram.n_nodes


def check_vectors(n: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Every vector when n <= 20 (exhaustive), else ``count`` uniform random vectors."""
    if n <= EXHAUSTIVE_CHECK_MAX_INPUTS:
        return all_vectors(n), True
    return rng.integers(0, 2, size=(count, n), dtype=np.uint8), False


def learn_circuit(
    oracle: Oracle,
    plan: SamplingPlan = SamplingPlan(),
    target: float | None = None,
    max_rounds: int = 4,
    check_count: int = 100_000,
    seed: int = 0,
    sift_max_nodes: int = SIFT_MAX_NODES,
    exact_max_inputs: int = EXACT_MAX_INPUTS,
) -> LearnResult:
    """Learn every output bit of ``oracle``; ``target`` defaults to 1.0 (exhaustive) or 0.9999.

    Diagrams of at most ``sift_max_nodes`` nodes are reordered by sifting (same functions, fewer nodes).
    With at most ``exact_max_inputs`` inputs (and a table of at most EXACT_MAX_TABLE_BYTES) the diagram
    is exact (one round, from the truth table)."""
    n, m = oracle.n_inputs, oracle.n_outputs
    rng = np.random.default_rng(seed)
    check_rng = np.random.default_rng(seed + 1_000_003)
    exhaustive = n <= EXHAUSTIVE_CHECK_MAX_INPUTS
    exact = n <= exact_max_inputs and m << n <= EXACT_MAX_TABLE_BYTES
    target = (1.0 if exhaustive else 0.9999) if target is None else target
    start = time.perf_counter()
    queries_before = getattr(oracle, "queries", 0)
    hints = np.zeros((0, n), np.uint8)
    order: list[int] = []  # a later round learns under the (sifted) order of the one before
    history: list[dict] = []
    for round_ in range(1, max_rounds + 1):
        if exact:
            diagram = exact_diagram(oracle, n, m)
        else:
            diagram = learn_diagram(oracle, n, m, plan, rng, hints, order)
        if diagram.n_nodes <= sift_max_nodes:
            diagram = sift(diagram)
        x, _ = check_vectors(n, check_count, check_rng)
        wrong = diagram.evaluate(x) != oracle(x)
        accuracy = 1.0 - wrong.any(axis=1).mean()
        history.append({"round": round_, "nodes": diagram.n_nodes, "accuracy": float(accuracy)})
        if accuracy >= target or round_ == max_rounds or exact:
            break
        cex = x[wrong.any(axis=1)]
        cex = cex[rng.permutation(len(cex))[: MAX_HINTS // 2]]
        hints = np.concatenate([cex, hints])[:MAX_HINTS]
        plan = replace(plan, samples=plan.samples * 2, min_samples=plan.min_samples * 2)
        order = diagram.order
    learn_seconds = time.perf_counter() - start
    if not exhaustive:  # report on vectors no refinement saw
        x, _ = check_vectors(n, check_count, np.random.default_rng(seed + 2_000_003))
        wrong = diagram.evaluate(x) != oracle(x)
        accuracy = 1.0 - wrong.any(axis=1).mean()
    return LearnResult(
        diagram=diagram,
        accuracy=float(accuracy),
        bit_accuracy=[float(a) for a in 1.0 - wrong.mean(axis=0)],
        check_vectors=len(x),
        exhaustive=exhaustive,
        rounds=len(history),
        learn_seconds=learn_seconds,
        oracle_queries=getattr(oracle, "queries", 0) - queries_before,
        history=history,
    )
