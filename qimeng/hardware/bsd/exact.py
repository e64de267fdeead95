"""The exact shared diagram of a function from its whole truth table, bottom-up (no speculation).

When the oracle can be asked every one of the 2**N input vectors, it is, once each: the truth table
of all M outputs, laid out so that the last variable of the order is the lowest index bit. Each
layer, from the bottom up, pairs the node ids of adjacent entries (``lo``, ``hi``): equal pairs
skip the variable, every other distinct pair is one node, shared by every output and entry with
that pair. This is the signature merge of :mod:`qimeng.hardware.bsd.sampling` with exhaustive
signatures, vectorised over the table: a dense lookup while the layer below has few nodes, a sort
otherwise. It holds M * 2**N bytes at the bottom layer (400 MB for 24 inputs and 24 outputs).

The order matters (an 8-bit adder: 2,653 nodes low bits first, 71 high bits first). The table is
queried once, in the input order; up to ORDERS_MAX_INPUTS inputs it is also rearranged (no more
queries) into the support order and its reverse (:func:`~qimeng.hardware.bsd.reorder.support_order`),
and the smallest diagram is kept for sifting.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from qimeng.hardware.bsd.diagram import Diagram, reduce_diagram
from qimeng.hardware.bsd.reorder import support_order

EXACT_MAX_INPUTS = 24  # 2**24 oracle queries: a 12x12 multiplier's table in about 30 CPU seconds
EXACT_MAX_TABLE_BYTES = 1 << 30  # M * 2**N: wider tables are learned by sampling
QUERY_ROWS = 1 << 20  # oracle queries per call
ORDERS_MAX_INPUTS = 20  # up to here the table is also tried in two more orders
DENSE_PAIRS = 1 << 16  # up to this many (or table entries of) (lo, hi) combinations: a lookup table


def exact_diagram(oracle: Callable[[np.ndarray], np.ndarray], n: int, m: int) -> Diagram:
    """The smallest exact diagram of every output of ``oracle`` over the orders tried."""
    table = truth_table(oracle, n, m)
    best = table_diagram(table, list(range(n)))
    if n <= ORDERS_MAX_INPUTS:
        support = support_order(best)
        for order in (support, support[::-1]):
            d = table_diagram(table, order)
            best = d if d.n_nodes < best.n_nodes else best
    return best


def table_diagram(table: np.ndarray, order: list[int]) -> Diagram:
    """The reduced diagram of a :func:`truth_table` under ``order`` (top variable first)."""
    n, m = len(order), table.shape[0]
    ids = table if order == list(range(n)) else table[:, _columns(order)]
    var, lo, hi = [np.array([-1, -1])], [np.array([0, 1])], [np.array([0, 1])]
    size = 2
    for depth in range(n - 1, -1, -1):
        low, high = ids[:, 0::2], ids[:, 1::2]
        pairs = low.astype(np.int64) * size + high if size * size > max(DENSE_PAIRS, low.size) else None
        if pairs is None:  # dense: mark the combinations present, number them in order
            present = np.zeros(size * size, bool)
            for j in range(m):
                key = low[j].astype(np.int32) * size + high[j]
                present[key[low[j] != high[j]]] = True
            new_of_key = (np.cumsum(present) - 1 + size).astype(np.int64)
            keys = np.flatnonzero(present)
        else:
            keys, inverse = np.unique(pairs[low != high], return_inverse=True)
        count = len(keys)
        dtype = np.uint8 if size + count < 256 else np.uint16 if size + count < 65536 else np.int32
        nxt = np.empty(low.shape, dtype)
        if pairs is None:
            for j in range(m):
                key = low[j].astype(np.int32) * size + high[j]
                nxt[j] = np.where(low[j] == high[j], low[j], new_of_key[key])
        else:
            nxt[...] = low
            nxt[low != high] = size + inverse.reshape(-1)
        var.append(np.full(count, order[depth]))
        lo.append(keys // size)
        hi.append(keys % size)
        size += count
        ids = nxt
    join = lambda parts: np.concatenate(parts).astype(np.int64)  # noqa: E731
    return reduce_diagram(Diagram(list(order), join(var), join(lo), join(hi), ids[:, 0].astype(np.int64)))


def truth_table(oracle: Callable[[np.ndarray], np.ndarray], n: int, m: int) -> np.ndarray:
    """(M, 2**N) uint8: output j on the vector whose input N-1-t is bit t of the column (input 0 the
    most significant bit: the table of the input order)."""
    table = np.empty((m, 1 << n), np.uint8)
    shifts = np.arange(n, dtype=np.int64)
    column_of_bit = np.arange(n)[::-1]
    for start in range(0, 1 << n, QUERY_ROWS):
        r = np.arange(start, min(start + QUERY_ROWS, 1 << n), dtype=np.int64)
        x = np.empty((len(r), n), np.uint8)
        x[:, column_of_bit] = (r[:, None] >> shifts) & 1
        table[:, start : start + len(r)] = oracle(x).T
    return table


def _columns(order: list[int]) -> np.ndarray:
    """For each column c of the table under ``order``, its column in the input order's table."""
    n = len(order)
    c = np.arange(1 << n, dtype=np.int64)
    source = np.zeros_like(c)
    for t, v in enumerate(order[::-1]):  # bit t of c is input v, which is bit n-1-v of the source
        source |= ((c >> t) & 1) << (n - 1 - v)
    return source
