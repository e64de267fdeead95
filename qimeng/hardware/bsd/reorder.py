"""Smaller diagrams by variable reordering: Rudell's sifting on a learned (shared) diagram.

Reordering keeps every node's Boolean function, so the reordered diagram computes exactly what the
learned one does; only its layer order and size change. Sifting moves each variable in turn (the
widest layers first) through every layer by swaps of adjacent layers and leaves it where the
diagram was smallest; then every window of three adjacent layers takes the best of its six orders.
Passes repeat while they shrink the diagram.
"""

from __future__ import annotations

import numpy as np

from qimeng.hardware.bsd.diagram import Diagram, reduce_diagram

MAX_GROWTH = 1.2  # a variable stops moving one way once the diagram grows past this factor of the best
MAX_PASSES = 4  # passes of sifting and window permutation, while a pass still shrinks the diagram


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

    def permute_windows(self) -> None:
        """For each window of three adjacent layers, keep the best of its six orders (swap cycle)."""
        for i in range(len(self.level) - 2):
            swaps = [i, i + 1] * 3  # visits all six orders and returns to the first
            sizes = [self.size]
            for s in swaps[:-1]:
                self.swap(s)
                sizes.append(self.size)
            self.swap(swaps[-1])
            for s in swaps[: int(np.argmin(sizes))]:
                self.swap(s)

    def move_to(self, order: list[int]) -> None:
        """Reorder the layers to ``order`` (a permutation of the current one) by adjacent swaps."""
        for target, v in enumerate(order):
            for i in range(self.level.index(v) - 1, target - 1, -1):
                self.swap(i)

    def diagram(self) -> Diagram:
        arr = lambda xs: np.array(xs, dtype=np.int64)  # noqa: E731
        return reduce_diagram(Diagram(list(self.level), arr(self.var), arr(self.lo), arr(self.hi), arr(self.roots)))


def support_order(d: Diagram) -> list[int]:
    """The layer variables by how many outputs depend on them (most first), ties in ``d``'s order:
    for arithmetic, the low bits that every output depends on come first."""
    counts = dict.fromkeys(d.order, 0)
    for root in d.roots.tolist():
        for v in set(d.var[Diagram(d.order, d.var, d.lo, d.hi, np.array([root])).reachable()].tolist()):
            counts[v] += 1
    return sorted(d.order, key=lambda v: -counts[v])


def sift(d: Diagram) -> Diagram:
    """The same functions as ``d`` under the best order found (never larger than ``d``): sifting and
    window passes from ``d``'s own order, from :func:`support_order` and from its reverse (for an
    adder, high bits first: every carry is one function shared by all the sum bits above it)."""
    if len(d.order) < 2:
        return d
    best = d
    support = support_order(d)
    starts = (list(d.order), support, support[::-1])
    for start in [o for i, o in enumerate(starts) if o not in starts[:i]]:  # sifting is deterministic
        manager = Manager(d)
        manager.move_to(start)
        for _ in range(MAX_PASSES):
            before = manager.size
            manager.sift()
            manager.permute_windows()
            if manager.size >= before:
                break
        if manager.size < best.n_nodes:
            best = manager.diagram()
    return best
