"""Binary Speculation Diagrams: one layered, ordered decision diagram for all output bits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONST0, CONST1 = 0, 1
BITWISE_MAX_BITS = 1 << 28  # nodes x rows evaluated bit-parallel (32 MiB of node values), else walked


@dataclass
class Diagram:
    """Every output bit as one reduced, ordered, multi-rooted diagram (nodes shared by all outputs).

    Node 0 and 1 are the constant leaves; node k >= 2 tests input ``var[k]``: its value is node
    ``hi[k]`` when that input is 1 and node ``lo[k]`` otherwise. ``order`` lists the variable of
    each layer from the top down; output bit j is the value of node ``roots[j]``.
    """

    order: list[int]
    var: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    roots: np.ndarray

    @property
    def n_nodes(self) -> int:
        """Number of decision (non-leaf) nodes reachable from some root."""
        return len(self.reachable())

    def node_layers(self) -> np.ndarray:
        """Layer of each node (leaves: ``len(order)``)."""
        layer_of_var = np.full(max(self.order, default=-1) + 2, len(self.order), dtype=np.int64)
        layer_of_var[self.order] = np.arange(len(self.order))
        return layer_of_var[self.var]  # var -1 (leaves) reads the last entry

    def reachable(self) -> np.ndarray:
        """Decision nodes reachable from the roots, ordered by layer (parents before children)."""
        seen = np.zeros(len(self.var), dtype=bool)
        frontier = np.unique(self.roots)
        while frontier.size:
            frontier = frontier[(frontier >= 2) & ~seen[frontier]]
            seen[frontier] = True
            frontier = np.unique(np.concatenate([self.lo[frontier], self.hi[frontier]]))
        nodes = np.flatnonzero(seen)
        return nodes[np.argsort(self.node_layers()[nodes], kind="stable")]

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Every output bit on each row of a (B, N) 0/1 matrix: (B, M) uint8, vectorised over rows.

        Small diagrams compute every node's value on all rows at once, 64 rows per machine word,
        bottom layer first; large ones walk each row from its roots down (:meth:`_walk`)."""
        if len(self.var) * x.shape[0] > BITWISE_MAX_BITS:
            return self._walk(x)
        words = np.packbits(x, axis=0, bitorder="little")  # (ceil(B/8), N): column v holds input v of every row
        value = np.zeros((len(self.var), words.shape[0]), np.uint8)
        value[CONST1] = 0xFF
        for k in self.reachable()[::-1].tolist():  # children first
            sel = words[:, self.var[k]]
            value[k] = (sel & value[self.hi[k]]) | (~sel & value[self.lo[k]])
        return np.unpackbits(value[self.roots], axis=1, count=x.shape[0], bitorder="little").T.copy()

    def _walk(self, x: np.ndarray) -> np.ndarray:
        """:meth:`evaluate` with one gather per layer: a table per layer maps (node, input bit) to the
        next node, and every node not on that layer (leaves included) to itself."""
        index = np.int32 if len(self.var) < 2**30 else np.int64
        cur = np.repeat(self.roots.astype(index)[None, :], x.shape[0], axis=0)
        layer_of_node = self.node_layers()
        for depth, v in enumerate(self.order):
            step = np.repeat(np.arange(len(self.var), dtype=index), 2)
            here = np.flatnonzero(layer_of_node == depth)
            step[2 * here], step[2 * here + 1] = self.lo[here], self.hi[here]
            cur = step[2 * cur + x[:, v : v + 1]]
        return cur.astype(np.uint8)


def reduce_diagram(d: Diagram) -> Diagram:
    """Skip nodes whose children are equal, merge nodes with equal (var, lo, hi); renumber compactly.

    Vectorised per layer, from the bottom layer up."""
    nodes = d.reachable()
    layer = d.node_layers()[nodes]
    mapped = np.arange(len(d.var))
    var, lo, hi = [np.array([-1, -1])], [np.array([CONST0, CONST1])], [np.array([CONST0, CONST1])]
    size = 2
    for depth in np.unique(layer)[::-1].tolist():
        here = nodes[layer == depth]
        a, b = mapped[d.lo[here]], mapped[d.hi[here]]
        skip = a == b
        mapped[here[skip]] = a[skip]
        keep = ~skip
        if keep.any():
            pairs, inverse = np.unique(np.stack([a[keep], b[keep]], axis=1), axis=0, return_inverse=True)
            mapped[here[keep]] = size + inverse.reshape(-1)
            var.append(np.full(len(pairs), d.order[depth]))
            lo.append(pairs[:, 0])
            hi.append(pairs[:, 1])
            size += len(pairs)
    join = lambda parts: np.concatenate(parts).astype(np.int64)  # noqa: E731
    return Diagram(list(d.order), join(var), join(lo), join(hi), mapped[d.roots].astype(np.int64))
