"""A multiplexer network from a diagram, smaller than one multiplexer per node, by cut decomposition.

Cut a node's sub-diagram between two layers. When the edges crossing the cut reach only two nodes
``u`` and ``w`` (not both constants), the node's function is ``g ? w : u``: ``g`` is the part above
the cut with ``u`` replaced by 0 and ``w`` by 1, a function of the upper variables only. ``g``, ``u``
and ``w`` are decomposed again; equal functions are one node of the shared unique table, so they
become one wire. For an adder this finds the carry chain: every sum bit is ``carry ? w : u`` and
the carries, shared by all sum bits, are ``carry ? (a | b) : (a & b)``: a ripple-carry adder instead
of a diagram of quadratic size. A cut crossed into both constants and one node ``v`` gives
``k = r ? v : g1`` (``r``: the path reaches ``v``; ``g1``: it reaches 1), as in a comparator:
``a < b`` is ``(high bits equal) ? (low bits a < b) : (high bits a < b)``. Nodes without such a
cut, and every node of a diagram larger than DECOMPOSE_MAX_NODES (or with ``decompose=False``), stay
one multiplexer on their input.
"""

from __future__ import annotations

from qimeng.hardware.bsd.diagram import CONST0, CONST1, Diagram
from qimeng.hardware.bsd.reorder import Manager

DECOMPOSE_MAX_NODES = 5_000  # cut search walks each node's sub-diagram: larger diagrams keep one mux per node


class Network:
    """Wires ``w{k} = select ? hi : lo`` in an order where every wire is defined before use."""

    def __init__(self, d: Diagram, decompose: bool = True) -> None:
        self.decompose = decompose and d.n_nodes <= DECOMPOSE_MAX_NODES
        self.manager = Manager(d)
        self.layer = {v: i for i, v in enumerate(self.manager.level)}
        self.depth = len(self.manager.level)
        self.assigns: list[tuple[str, str, str, str]] = []  # (wire, select, hi, lo)
        self._wire: dict[int, str] = {CONST0: "1'b0", CONST1: "1'b1"}
        self.outputs = [self.wire(r) for r in self.manager.roots]

    def _layer(self, k: int) -> int:
        return self.depth if k < 2 else self.layer[self.manager.var[k]]

    def wire(self, k: int) -> str:
        """The wire computing node ``k`` (defined, with the wires it uses, on first request)."""
        stack = [k]
        while stack:
            k = stack[-1]
            if k in self._wire:
                stack.pop()
                continue
            select, hi, lo = self._split(k)
            missing = [p for p in (select, hi, lo) if isinstance(p, int) and p not in self._wire]
            if missing:
                stack += missing
                continue
            stack.pop()
            name = self._wire[k] = f"w{len(self.assigns)}"
            ref = lambda p: p if isinstance(p, str) else self._wire[p]  # noqa: E731
            self.assigns.append((name, ref(select), ref(hi), ref(lo)))
        return self._wire[k]

    def _split(self, k: int) -> tuple[int | str, int, int]:
        """(select, hi, lo) of node ``k``: a decomposition at its lowest cut, or its own input multiplexer."""
        m = self.manager
        cut = self._lowest_cut(k) if self.decompose else None
        if cut is None:
            return f"x[{m.var[k]}]", m.hi[k], m.lo[k]
        crossing = sorted(cut)
        if len(crossing) == 2:  # k = g ? w : u
            u, w = crossing
            return self._upper(k, {u: CONST0, w: CONST1}, {}), w, u
        below = crossing[2]  # {0, 1, below}: k = (reaches below) ? below : (reaches 1)
        reaches_below = self._upper(k, {CONST0: CONST0, CONST1: CONST0, below: CONST1}, {})
        return reaches_below, below, self._upper(k, {CONST0: CONST0, CONST1: CONST1, below: CONST0}, {})

    def _lowest_cut(self, k: int) -> set[int] | None:
        """The nodes crossed at the lowest cut, at least two layers below ``k``, that is crossed into
        two nodes (not both constants); else at the lowest one crossed into both constants and a node."""
        m, top = self.manager, self._layer(k)
        edges, seen, stack = [], {k}, [k]
        while stack:
            a = stack.pop()
            for b in (m.lo[a], m.hi[a]):
                edges.append((self._layer(a), self._layer(b), b))
                if b >= 2 and b not in seen:
                    seen.add(b)
                    stack.append(b)
        cuts = [{b for la, lb, b in edges if la < c <= lb} for c in range(self.depth, top + 1, -1)]
        two = [s for s in cuts if len(s) == 2 and not s <= {CONST0, CONST1}]
        three = [s for s in cuts if len(s) == 3 and {CONST0, CONST1} < s]
        return (two or three or [None])[0]

    def _upper(self, k: int, leaf: dict[int, int], memo: dict[int, int]) -> int:
        """Node of the part of ``k`` above the cut, each crossed node replaced by its constant in ``leaf``."""
        if k in leaf:
            return leaf[k]
        if k not in memo:
            m = self.manager
            memo[k] = m.make(m.var[k], self._upper(m.lo[k], leaf, memo), self._upper(m.hi[k], leaf, memo))
        return memo[k]
