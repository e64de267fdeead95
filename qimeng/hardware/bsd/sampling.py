"""Learning one shared Binary Speculation Diagram of every output bit from oracle queries.

Layer by layer, for all outputs at once: the next variable is the one with the most influence on
the unresolved nodes (how often flipping it changes the node's output, estimated by sampling and
weighted by each node's share of the input space). A node is a sub-function: one output bit with
the variables above fixed by a prefix. Each child of a frontier node is described by its signature:
that output on completions of the remaining variables taken from one suffix matrix shared by the
whole layer. An all-0 or all-1 signature becomes a constant leaf (the speculation); equal signatures
merge into one node (Boolean distance 0), whichever output they come from, so output bits share
nodes. Queries are made once per distinct prefix and serve every output bit at that prefix. The
signature length shrinks with the unresolved share of the input space of the output with the most
left (a merged node counts for the output it was first found in), and becomes exhaustive (exact)
once few variables remain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from qimeng.hardware.bsd.bits import all_vectors
from qimeng.hardware.bsd.diagram import CONST0, CONST1, Diagram, reduce_diagram

MultiOracle = Callable[[np.ndarray], np.ndarray]  # (B, N) uint8 -> (B, M) uint8
CHUNK_ROWS = 1 << 20  # oracle queries per call, at most


@dataclass(frozen=True)
class SamplingPlan:
    """How many oracle queries learning spends."""

    samples: int = 1024  # signature length while the whole input space is unresolved
    min_samples: int = 128  # signature length never drops below this
    influence_queries: int = 1 << 15  # oracle queries per layer to choose its variable
    influence_nodes: int = 64  # at most this many (heaviest) frontier nodes estimate influence


@dataclass
class _Frontier:
    """Unresolved nodes of one layer: node k is output ``column[k]`` below prefix ``prefixes[group[k]]``."""

    prefixes: np.ndarray  # (P, N) distinct prefixes
    group: np.ndarray  # (F,) prefix of each node
    column: np.ndarray  # (F,) output bit of each node
    weight: np.ndarray  # (F,) share of the input space reaching the node, summed over outputs
    ids: np.ndarray  # (F,) node numbers in the diagram being built


def learn_diagram(
    oracle: MultiOracle, n: int, m: int, plan: SamplingPlan, rng: np.random.Generator, hints: np.ndarray | None = None,
    order_hint: list[int] | None = None,
) -> Diagram:
    """Learn all ``m`` output bits over ``n`` inputs as one diagram. ``hints`` are input vectors
    (for instance earlier counterexamples) whose completions join every layer's suffix matrix.
    ``order_hint`` fixes the variables of the top layers (for instance a sifted earlier order);
    the layers below it take the most influential variable."""
    order_hint = order_hint or []
    hints = np.zeros((0, n), np.uint8) if hints is None else hints
    remaining = np.ones(n, dtype=bool)
    order: list[int] = []
    layers: list[tuple[np.ndarray, int, np.ndarray]] = []  # (node ids, variable, child ids 2k + b)

    root_sig = oracle(_suffixes(remaining, plan.samples, rng, hints))  # (L, M)
    roots = np.where(root_sig.all(axis=0), CONST1, CONST0).astype(np.int64)
    open_ = np.flatnonzero(root_sig.any(axis=0) & ~root_sig.all(axis=0))
    frontier, node_of_row = _merge(root_sig[:, open_].T, open_, np.zeros(len(open_), np.int64),
                                   np.zeros((1, n), np.uint8), np.ones(len(open_)), 2)
    roots[open_] = node_of_row
    next_id = 2 + len(frontier.ids)

    while len(frontier.ids):
        depth = len(order)
        v = order_hint[depth] if depth < len(order_hint) else _most_influential(oracle, frontier, remaining, plan, rng)
        order.append(v)
        remaining[v] = False
        hardest = np.bincount(frontier.column, weights=frontier.weight).max()  # unresolved share of one output
        length = int(np.clip(plan.samples * hardest, plan.min_samples, plan.samples))
        suffix = _suffixes(remaining, length, rng, hints)
        children = np.repeat(frontier.prefixes, 2, axis=0)  # child prefix 2p + b sets x[v] = b
        children[1::2, v] = 1
        children[0::2, v] = 0
        sig = _signatures(oracle, children, frontier, remaining, suffix)  # (2F, L): child 2k + b of node k

        child_ids = np.where(sig.all(axis=1), CONST1, CONST0).astype(np.int64)
        open_ = np.flatnonzero(sig.any(axis=1) & ~sig.all(axis=1))
        child_group = 2 * np.repeat(frontier.group, 2) + np.tile([0, 1], len(frontier.ids))
        layers.append((frontier.ids, v, child_ids))
        frontier, node_of_row = _merge(sig[open_], np.repeat(frontier.column, 2)[open_], child_group[open_],
                                       children, np.repeat(frontier.weight / 2, 2)[open_], next_id)
        child_ids[open_] = node_of_row
        next_id += len(frontier.ids)

    var, lo, hi = np.full(next_id, -1, np.int64), np.arange(next_id), np.arange(next_id)
    for ids, v, child_ids in layers:
        var[ids], lo[ids], hi[ids] = v, child_ids[0::2], child_ids[1::2]
    return reduce_diagram(Diagram(order, var, lo, hi, roots))


def _merge(sig: np.ndarray, column: np.ndarray, group: np.ndarray, prefixes: np.ndarray, weight: np.ndarray,
           next_id: int) -> tuple[_Frontier, np.ndarray]:
    """The next frontier, one node per distinct signature (row of ``sig``) numbered from ``next_id``,
    and the node of each row. Row r is output ``column[r]`` below prefix ``prefixes[group[r]]``."""
    empty = np.zeros(0, np.int64)
    if not len(sig):
        return _Frontier(prefixes[:0], empty, empty, np.zeros(0), empty), empty
    _, first, inverse = np.unique(np.packbits(sig, axis=1), axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    used, node_group = np.unique(group[first], return_inverse=True)
    ids = next_id + np.arange(len(first))
    frontier = _Frontier(prefixes[used], node_group.reshape(-1), column[first],
                         np.bincount(inverse, weights=weight, minlength=len(first)), ids)
    return frontier, ids[inverse]


def _signatures(oracle: MultiOracle, children: np.ndarray, frontier: _Frontier, remaining: np.ndarray,
                suffix: np.ndarray) -> np.ndarray:
    """(2F, L) output bits: child b of node k is its output bit on prefix ``children[2 group[k] + b]``
    completed by every suffix row. One query per (child prefix, suffix row) serves all outputs.

    Queries go in chunks of at most CHUNK_ROWS rows so memory stays bounded on wide frontiers.
    """
    length = len(suffix)
    per_chunk = max(1, CHUNK_ROWS // length)
    sig = np.empty((2 * len(frontier.ids), length), np.uint8)
    node_of_child = np.repeat(np.arange(len(frontier.ids)), 2)
    child_prefix = 2 * frontier.group[node_of_child] + np.tile([0, 1], len(frontier.ids))
    by_prefix = np.argsort(child_prefix, kind="stable")
    starts = np.searchsorted(child_prefix[by_prefix], np.arange(0, len(children) + per_chunk, per_chunk))
    for c, lo in enumerate(range(0, len(children), per_chunk)):
        part = children[lo : lo + per_chunk]
        grid = np.repeat(part, length, axis=0)
        grid[:, remaining] = np.tile(suffix[:, remaining], (len(part), 1))
        out = oracle(grid).reshape(len(part), length, -1)
        rows = by_prefix[starts[c] : starts[c + 1]]
        sig[rows] = out[child_prefix[rows] - lo, :, frontier.column[node_of_child[rows]]]
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


def _most_influential(oracle: MultiOracle, frontier: _Frontier, remaining: np.ndarray, plan: SamplingPlan,
                      rng: np.random.Generator) -> int:
    """The remaining variable whose flip most often changes a node's output, weighted by node share."""
    candidates = np.flatnonzero(remaining)
    if len(candidates) == 1:
        return int(candidates[0])
    heaviest = np.argsort(-frontier.weight, kind="stable")[: plan.influence_nodes]
    prefixes, weights = frontier.prefixes[frontier.group[heaviest]], frontier.weight[heaviest]
    columns = frontier.column[heaviest]
    nodes, n, k = len(prefixes), prefixes.shape[1], len(candidates)
    reps = int(np.clip(plan.influence_queries // (nodes * (k + 1)), 4, 256))
    base = np.repeat(prefixes, reps, axis=0)
    base[:, remaining] = rng.integers(0, 2, size=(len(base), k), dtype=np.uint8)
    flipped = np.repeat(base[None], k + 1, axis=0)  # (k+1, nodes*reps, n); slice 0 unflipped
    flipped[np.arange(1, k + 1), :, candidates] ^= 1
    out = oracle(flipped.reshape(-1, n)).reshape(k + 1, nodes, reps, -1)
    out = np.take_along_axis(out, columns[None, :, None, None], axis=3)[..., 0]  # each node's own output
    changed = (out[1:] != out[:1]).mean(axis=2)  # (k, nodes)
    score = changed @ weights
    return int(candidates[np.argmax(score)])
