"""Smaller diagrams by variable reordering: Rudell's sifting on a learned (shared) diagram.

Reordering keeps every node's Boolean function, so the reordered diagram computes exactly what the
learned one does; only its layer order and size change. Sifting moves each variable in turn (the
widest layers first) through every layer by swaps of adjacent layers and leaves it where the
diagram was smallest.
"""

from __future__ import annotations

import numpy as np

from qimeng.hardware.bsd.diagram import Diagram, reduce_diagram

MAX_GROWTH = 1.2  # a variable stops moving one way once the diagram grows past this factor of the best


class Manager:
    """A reduced ordered diagram with a unique table per variable and reference counts."""

    def __init__(self, d: Diagram) -> None:
        self.level = list(d.order)
        self.var, self.lo, self.hi, self.ref = [-1, -1], [0, 1], [0, 1], [1, 1]
        self.unique: dict[int, dict[tuple[int, int], int]] = {v: {} for v in self.level}
        mapped = {0: 0, 1: 1}
        for k in d.reachable()[::-1].tolist():
            mapped[k] = self.make(int(d.var[k]), mapped[int(d.lo[k])], mapped[int(d.hi[k])])
        self.roots = [self._take(mapped[int(r)]) for r in d.roots]

    @property
    def size(self) -> int:
        return sum(len(t) for t in self.unique.values())

    def _take(self, k: int) -> int:
        self.ref[k] += 1
        return k

    def make(self, v: int, lo: int, hi: int) -> int:
        if lo == hi:
            return lo
        table = self.unique[v]
        k = table.get((lo, hi))
        if k is None:
            k = table[(lo, hi)] = len(self.var)
            self.var.append(v)
            self.lo.append(self._take(lo))
            self.hi.append(self._take(hi))
            self.ref.append(0)
        return k

    def _drop(self, k: int) -> None:
        stack = [k]
        while stack:
            k = stack.pop()
            self.ref[k] -= 1
            if self.ref[k] == 0 and k >= 2:
                del self.unique[self.var[k]][(self.lo[k], self.hi[k])]
                stack += [self.lo[k], self.hi[k]]

    def swap(self, i: int) -> None:
        """Exchange the variables of layers i and i + 1; every node keeps its function."""
        x, y = self.level[i], self.level[i + 1]
        table_x = self.unique[x]
        for (f0, f1), f in list(table_x.items()):
            if self.var[f0] != y and self.var[f1] != y:
                continue  # does not depend on y: stays an x node, now one layer lower
            f00, f01 = (self.lo[f0], self.hi[f0]) if self.var[f0] == y else (f0, f0)
            f10, f11 = (self.lo[f1], self.hi[f1]) if self.var[f1] == y else (f1, f1)
            del table_x[(f0, f1)]
            g0, g1 = self._take(self.make(x, f00, f10)), self._take(self.make(x, f01, f11))
            self.var[f], self.lo[f], self.hi[f] = y, g0, g1
            self.unique[y][(g0, g1)] = f
            self._drop(f0)
            self._drop(f1)
        self.level[i], self.level[i + 1] = y, x

    def sift(self) -> None:
        """Move each variable, widest layer first, to the layer where the diagram is smallest."""
        for v in sorted(self.level, key=lambda v: -len(self.unique[v])):
            best, best_at, at = self.size, self.level.index(v), self.level.index(v)
            down_first = at >= len(self.level) // 2
            for direction in ((1, -1) if down_first else (-1, 1)):
                while 0 <= at + direction < len(self.level) and self.size <= MAX_GROWTH * best:
                    self.swap(min(at, at + direction))
                    at += direction
                    if self.size < best:
                        best, best_at = self.size, at
            while at != best_at:
                step = 1 if best_at > at else -1
                self.swap(min(at, at + step))
                at += step

    def diagram(self) -> Diagram:
        arr = lambda xs: np.array(xs, dtype=np.int64)  # noqa: E731
        return reduce_diagram(Diagram(list(self.level), arr(self.var), arr(self.lo), arr(self.hi), arr(self.roots)))


def sift(d: Diagram) -> Diagram:
    """The same functions as ``d`` under the variable order sifting finds (never larger than ``d``)."""
    if len(d.order) < 2:
        return d
    manager = Manager(d)
    manager.sift()
    out = manager.diagram()
    return out if out.n_nodes <= d.n_nodes else d
