"""A multiplexer network from a diagram, smaller than one multiplexer per node, by cut decomposition.

Cut a node's sub-diagram between two layers. When the edges crossing the cut reach only two nodes
``u`` and ``w`` (not both constants), the node's function is ``g ? w : u``: ``g`` is the part above
the cut with ``u`` replaced by 0 and ``w`` by 1, a function of the upper variables only. ``g``, ``u``
and ``w`` are decomposed again; equal functions are one node of the shared unique table, so they
become one wire. For an adder this finds the carry chain: every sum bit is ``carry ? w : u`` and
the carries, shared by all sum bits, are ``carry ? (a | b) : (a & b)``: a ripple-carry adder instead
of a diagram of quadratic size. Nodes without such a cut stay one multiplexer on their input.
"""

from __future__ import annotations

from qimeng.hardware.bsd.diagram import CONST0, CONST1, Diagram
from qimeng.hardware.bsd.reorder import Manager


class Network:
    """Wires ``w{k} = select ? hi : lo`` in an order where every wire is defined before use."""

    def __init__(self, d: Diagram) -> None:
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
        """(select, hi, lo) of node ``k``: a decomposition ``g ? w : u`` or its own input multiplexer."""
        cut = self._lowest_cut(k)
        m = self.manager
        if cut is None:
            return f"x[{m.var[k]}]", m.hi[k], m.lo[k]
        c, u, w = cut
        return self._upper(k, c, u, w, {}), w, u

    def _lowest_cut(self, k: int) -> tuple[int, int, int] | None:
        """(cut layer, u, w): the lowest cut, at least two layers below ``k``, crossed into two nodes."""
        m, top = self.manager, self._layer(k)
        edges, seen, stack = [], {k}, [k]
        while stack:
            a = stack.pop()
            for b in (m.lo[a], m.hi[a]):
                edges.append((self._layer(a), self._layer(b), b))
                if b >= 2 and b not in seen:
                    seen.add(b)
                    stack.append(b)
        for c in range(self.depth, top + 1, -1):
            crossing = {b for la, lb, b in edges if la < c <= lb}
            if len(crossing) == 2 and not crossing <= {CONST0, CONST1}:
                u, w = sorted(crossing)
                return c, u, w
        return None

    def _upper(self, k: int, c: int, u: int, w: int, memo: dict[int, int]) -> int:
        """Node of the part of ``k`` above layer ``c`` with ``u`` -> 0 and ``w`` -> 1."""
        if k == u:
            return CONST0
        if k == w:
            return CONST1
        if k not in memo:
            m = self.manager
            memo[k] = m.make(m.var[k], self._upper(m.lo[k], c, u, w, memo), self._upper(m.hi[k], c, u, w, memo))
        return memo[k]
