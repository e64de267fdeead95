"""Learning one output bit's Binary Speculation Diagram from oracle queries.

Layer by layer: the next variable is the one with the most influence on the unresolved nodes
(how often flipping it changes the output, estimated by sampling and weighted by each node's share
of the input space). Each child of a frontier node is described by its signature: the output bit
on completions of the remaining variables taken from one suffix matrix shared by the whole layer.
An all-0 or all-1 signature becomes a constant leaf (the speculation); equal signatures merge
(Boolean distance 0). The signature length shrinks with the unresolved share of the input space,
and becomes exhaustive (exact) once few variables remain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from qimeng.hardware.bsd.bits import all_vectors
from qimeng.hardware.bsd.diagram import CONST0, CONST1, Diagram, reduce_diagram

BitOracle = Callable[[np.ndarray], np.ndarray]  # (B, N) uint8 -> (B,) uint8
CHUNK_ROWS = 1 << 20  # oracle queries per call, at most


@dataclass(frozen=True)
class SamplingPlan:
    """How many oracle queries learning spends."""

    samples: int = 1024  # signature length while the whole input space is unresolved
    min_samples: int = 128  # signature length never drops below this
    influence_queries: int = 1 << 15  # oracle queries per layer to choose its variable
    influence_nodes: int = 64  # at most this many (heaviest) frontier nodes estimate influence


def learn_bit(
    oracle: BitOracle, n: int, plan: SamplingPlan, rng: np.random.Generator, hints: np.ndarray | None = None
) -> Diagram:
    """Learn one output bit over ``n`` inputs. ``hints`` are input vectors (for instance earlier
    counterexamples) whose completions join every layer's suffix matrix."""
    hints = np.zeros((0, n), np.uint8) if hints is None else hints
    remaining = np.ones(n, dtype=bool)
    var, lo, hi = [-1, -1], [CONST0, CONST1], [CONST0, CONST1]
    order: list[int] = []

    root_sig = oracle(_suffixes(remaining, plan.samples, rng, hints))
    if not root_sig.any() or root_sig.all():
        root = CONST1 if root_sig.all() else CONST0
        return Diagram([], np.array(var), np.array(lo), np.array(hi), root)
    prefixes, weights, ids = np.zeros((1, n), np.uint8), np.ones(1), np.array([2])
    var.append(-1), lo.append(-1), hi.append(-1)

    while len(ids):
        v = _most_influential(oracle, prefixes, weights, remaining, plan, rng)
        order.append(v)
        remaining[v] = False
        children = np.repeat(prefixes, 2, axis=0)
        children[1::2, v] = 1
        children[0::2, v] = 0
        child_weights = np.repeat(weights / 2, 2)
        length = int(np.clip(plan.samples * weights.sum(), plan.min_samples, plan.samples))
        sig = _signatures(oracle, children, remaining, _suffixes(remaining, length, rng, hints))

        const1, const0 = sig.all(axis=1), ~sig.any(axis=1)
        open_ = ~(const0 | const1)
        child_ids = np.where(const1, CONST1, CONST0)
        next_prefixes, next_weights, next_ids = np.zeros((0, n), np.uint8), np.zeros(0), np.zeros(0, np.int64)
        if open_.any():
            packed = np.packbits(sig[open_], axis=1)
            _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
            inverse = inverse.reshape(-1)
            next_ids = len(var) + np.arange(len(first))
            child_ids[open_] = next_ids[inverse]
            next_prefixes = children[open_][first]
            next_weights = np.bincount(inverse, weights=child_weights[open_], minlength=len(first))
            var += [-1] * len(first)
            lo += [-1] * len(first)
            hi += [-1] * len(first)
        for k, node in enumerate(ids):
            var[node], lo[node], hi[node] = v, int(child_ids[2 * k]), int(child_ids[2 * k + 1])
        prefixes, weights, ids = next_prefixes, next_weights, next_ids

    arr = lambda xs: np.array(xs, dtype=np.int64)  # noqa: E731
    return reduce_diagram(Diagram(order, arr(var), arr(lo), arr(hi), 2))


def _signatures(oracle: BitOracle, children: np.ndarray, remaining: np.ndarray, suffix: np.ndarray) -> np.ndarray:
    """(children, suffix rows) output bits: each child's prefix completed by every suffix row.

    Queries go in chunks of at most CHUNK_ROWS rows so memory stays bounded on wide frontiers.
    """
    per_chunk = max(1, CHUNK_ROWS // len(suffix))
    sig = np.empty((len(children), len(suffix)), np.uint8)
    for lo in range(0, len(children), per_chunk):
        part = children[lo : lo + per_chunk]
        grid = np.repeat(part, len(suffix), axis=0)
        grid[:, remaining] = np.tile(suffix[:, remaining], (len(part), 1))
        sig[lo : lo + len(part)] = oracle(grid).reshape(len(part), len(suffix))
    return sig


def _suffixes(remaining: np.ndarray, length: int, rng: np.random.Generator, hints: np.ndarray) -> np.ndarray:
    """The layer's shared suffix matrix (full-width rows; only ``remaining`` columns matter).

    Exhaustive when the remaining variables have at most ``length`` assignments; otherwise all-0,
    all-1, the hints, then uniform random rows.
    """
    n, k = len(remaining), int(remaining.sum())
    if k == 0:
        return np.zeros((1, n), np.uint8)
    if (1 << k) <= length:
        rows = np.zeros((1 << k, n), np.uint8)
        rows[:, remaining] = all_vectors(k)
        return rows
    length = -(-length // 8) * 8
    fixed = np.concatenate([np.zeros((1, n), np.uint8), np.ones((1, n), np.uint8), hints[: max(0, length - 2)]])
    random_rows = rng.integers(0, 2, size=(max(0, length - len(fixed)), n), dtype=np.uint8)
    return np.concatenate([fixed, random_rows])


def _most_influential(
    oracle: BitOracle, prefixes: np.ndarray, weights: np.ndarray, remaining: np.ndarray, plan: SamplingPlan, rng: np.random.Generator
) -> int:
    """The remaining variable whose flip most often changes the output, weighted by node share."""
    candidates = np.flatnonzero(remaining)
    if len(candidates) == 1:
        return int(candidates[0])
    heaviest = np.argsort(-weights, kind="stable")[: plan.influence_nodes]
    prefixes, weights = prefixes[heaviest], weights[heaviest]
    nodes, n, k = len(prefixes), prefixes.shape[1], len(candidates)
    reps = int(np.clip(plan.influence_queries // (nodes * (k + 1)), 4, 256))
    base = np.repeat(prefixes, reps, axis=0)
    base[:, remaining] = rng.integers(0, 2, size=(len(base), k), dtype=np.uint8)
    flipped = np.repeat(base[None], k + 1, axis=0)  # (k+1, nodes*reps, n); slice 0 unflipped
    flipped[np.arange(1, k + 1), :, candidates] ^= 1
    out = oracle(flipped.reshape(-1, n)).reshape(k + 1, nodes, reps)
    changed = (out[1:] != out[:1]).mean(axis=2)  # (k, nodes)
    score = changed @ weights
    return int(candidates[np.argmax(score)])
