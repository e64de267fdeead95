"""A triangular epilogue (``tril``/``triu`` of the product, any diagonal) seen in the epilogue's expression, and the
tiles it lets the GEMM template skip.

Core ATen writes ``tril(P, k)`` as ``where((n - m) <= k, P, 0)`` over the output's indices (``triu``: ``>= k``;
``masked_fill`` of the other triangle: the branches swapped). Where every element of an output tile falls on
the side that does not read the product, the tile needs no K loop: its program runs none (the epilogue still
writes it, zeros or whatever the other branch computes), and the tiles across the diagonal keep the epilogue's
own per-element choice. Only an epilogue whose value, with that ``where`` replaced by its other branch, no
longer reads ``ACC`` qualifies.
"""

from __future__ import annotations

from dataclasses import dataclass

from qimeng.kernels.engine.ir.expr import Const, Expr, IndexValue, Op, walk
from qimeng.kernels.engine.templates.epilogue import ACC, M_VAR, N_VAR

COMPARISONS = ("le", "lt", "ge", "gt")
FLIPPED = {"le": "ge", "lt": "gt", "ge": "le", "gt": "lt"}


@dataclass(frozen=True)
class Triangle:
    """The product is read only where ``n - m <= diagonal`` (``lower``) or ``n - m >= diagonal``."""

    lower: bool
    diagonal: int

    def dead_tile(self) -> str:
        """Triton code, true for a tile (``pid_m``, ``pid_n``) with no element on the product's side."""
        if self.lower:  # the tile's smallest n - m lies past the diagonal
            return f"pid_n * BLOCK_N - pid_m * BLOCK_M - (BLOCK_M - 1) > {self.diagonal}"
        return f"pid_n * BLOCK_N + (BLOCK_N - 1) - pid_m * BLOCK_M < {self.diagonal}"

    def lines(self) -> str:
        """Kernel lines after the tile's offsets: a dead tile's split gets an empty K range."""
        return f"\n    if {self.dead_tile()}:\n        k_hi = k_lo"


def _affine(e: Expr) -> tuple[int, int, int] | None:
    """``e`` as ``cn * n + cm * m + c`` over the tile's output indices, or None."""
    if isinstance(e, Const) and isinstance(e.value, int) and not isinstance(e.value, bool):
        return 0, 0, e.value
    if isinstance(e, IndexValue):
        coeffs = dict(e.index.terms)
        if set(coeffs) - {N_VAR, M_VAR}:
            return None
        return coeffs.get(N_VAR, 0), coeffs.get(M_VAR, 0), e.index.const
    if isinstance(e, Op) and e.name in ("add", "sub") and len(e.args) == 2:
        a, b = _affine(e.args[0]), _affine(e.args[1])
        if a is None or b is None:
            return None
        sign = 1 if e.name == "add" else -1
        return a[0] + sign * b[0], a[1] + sign * b[1], a[2] + sign * b[2]
    return None


def _triangle(cond: Expr) -> Triangle | None:
    """The side where ``cond`` (a comparison of ``n - m`` with a constant) holds, as a Triangle."""
    if not isinstance(cond, Op) or cond.name not in COMPARISONS:
        return None
    lhs, rhs = _affine(cond.args[0]), _affine(cond.args[1])
    if lhs is None or rhs is None:
        return None
    cn, cm, c = lhs[0] - rhs[0], lhs[1] - rhs[1], lhs[2] - rhs[2]  # cn * n + cm * m + c  (cmp)  0
    if abs(cn) != 1 or cm != -cn:
        return None
    name, bound = (cond.name, -c) if cn == 1 else (FLIPPED[cond.name], c)  # (n - m)  (cmp)  bound
    bound += {"lt": -1, "gt": 1}.get(name, 0)
    return Triangle(name in ("le", "lt"), bound)


def _replaced(e: Expr, target: Expr, by: Expr) -> Expr:
    if e == target:
        return by
    if isinstance(e, Op):
        return Op(e.name, tuple(_replaced(a, target, by) for a in e.args), e.dtype)
    return e


def triangle_of(value: Expr) -> Triangle | None:
    """The triangle outside which ``value`` does not read ``ACC``, if it has one."""
    for e in walk(value):
        if not (isinstance(e, Op) and e.name == "where"):
            continue
        keep = _triangle(e.args[0])
        if keep is None:
            continue
        for side, other in ((keep, e.args[2]), (Triangle(not keep.lower, keep.diagonal + (1 if keep.lower else -1)),
                                                  e.args[1])):
            if ACC not in walk(_replaced(value, e, other)):
                return side
    return None
