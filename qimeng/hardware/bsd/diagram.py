"""Binary Speculation Diagrams: layered, ordered decision diagrams of one output bit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONST0, CONST1 = 0, 1


@dataclass
class Diagram:
    """One output bit as a reduced ordered diagram.

    Node 0 and 1 are the constant leaves; node k >= 2 tests input ``var[k]``: its value is node
    ``hi[k]`` when that input is 1 and node ``lo[k]`` otherwise. ``order`` lists the variable of
    each layer from the root down.
    """

    order: list[int]
    var: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    root: int

    @property
    def n_nodes(self) -> int:
        """Number of decision (non-leaf) nodes reachable from the root."""
        return len(self.reachable())

    def reachable(self) -> list[int]:
        """Decision nodes reachable from the root, parents before children."""
        seen, stack, out = set(), [self.root], []
        while stack:
            k = stack.pop()
            if k < 2 or k in seen:
                continue
            seen.add(k)
            out.append(k)
            stack += [int(self.lo[k]), int(self.hi[k])]
        layer = {v: i for i, v in enumerate(self.order)}
        return sorted(out, key=lambda k: layer[int(self.var[k])])

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """The diagram's output on each row of a (B, N) 0/1 matrix, vectorised over rows."""
        cur = np.full(x.shape[0], self.root, dtype=np.int64)
        layer_of_node = np.full(len(self.var), len(self.order), dtype=np.int64)
        layer = {v: i for i, v in enumerate(self.order)}
        for k in range(2, len(self.var)):
            layer_of_node[k] = layer[int(self.var[k])]
        for depth, v in enumerate(self.order):
            sel = np.flatnonzero(layer_of_node[cur] == depth)
            if sel.size:
                node = cur[sel]
                cur[sel] = np.where(x[sel, v] != 0, self.hi[node], self.lo[node])
        return cur.astype(np.uint8)


def reduce_diagram(d: Diagram) -> Diagram:
    """Skip nodes whose children are equal and merge nodes with equal (var, lo, hi); renumber compactly."""
    nodes = d.reachable()
    mapped: dict[int, int] = {CONST0: CONST0, CONST1: CONST1}
    unique: dict[tuple[int, int, int], int] = {}
    var, lo, hi = [-1, -1], [CONST0, CONST1], [CONST0, CONST1]
    for k in reversed(nodes):  # children first
        a, b = mapped[int(d.lo[k])], mapped[int(d.hi[k])]
        if a == b:
            mapped[k] = a
            continue
        key = (int(d.var[k]), a, b)
        if key not in unique:
            unique[key] = len(var)
            var.append(key[0])
            lo.append(a)
            hi.append(b)
        mapped[k] = unique[key]
    as_array = lambda xs: np.array(xs, dtype=np.int64)  # noqa: E731
    return Diagram(list(d.order), as_array(var), as_array(lo), as_array(hi), mapped[d.root])
