"""Kernel-to-kernel rewrites that every backend benefits from (dimension coalescing)."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from qimeng.kernels.engine.ir.expr import Expr, IndexValue, Load, Op
from qimeng.kernels.engine.ir.index import Index, Var
from qimeng.kernels.engine.ir.kernel import Kernel


def map_indices(expr: Expr, fn: Callable[[Index], Index], memo: dict | None = None) -> Expr:
    """Rebuild ``expr`` with every index expression replaced by ``fn(index)``."""
    memo = {} if memo is None else memo
    if expr in memo:
        return memo[expr]
    if isinstance(expr, Load):
        out = replace(expr, index=fn(expr.index), mask=None if expr.mask is None else map_indices(expr.mask, fn, memo))
    elif isinstance(expr, IndexValue):
        out = replace(expr, index=fn(expr.index))
    elif isinstance(expr, Op):
        out = replace(expr, args=tuple(map_indices(a, fn, memo) for a in expr.args))
    else:
        out = expr
    memo[expr] = out
    return out


def kernel_indices(kernel: Kernel) -> list[Index]:
    found: list[Index] = [s.index for s in kernel.stores]

    def collect(i: Index) -> Index:
        found.append(i)
        return i

    memo: dict = {}
    for root in [r.value for r in kernel.reductions] + [s.value for s in kernel.scans] + [s.value for s in kernel.stores]:
        map_indices(root, collect, memo)
    return found


def map_kernel(kernel: Kernel, fn: Callable[[Index], Index], parallel: tuple[Var, ...], reduce: tuple[Var, ...]) -> Kernel:
    memo: dict = {}
    return replace(
        kernel, parallel=parallel, reduce=reduce,
        reductions=tuple(replace(r, value=map_indices(r.value, fn, memo)) for r in kernel.reductions),
        scans=tuple(replace(s, value=map_indices(s.value, fn, memo)) for s in kernel.scans),
        stores=tuple(replace(s, index=fn(s.index), value=map_indices(s.value, fn, memo)) for s in kernel.stores),
    )


def _only_linear(index: Index, var: Var) -> bool:
    """``var`` appears in ``index`` only as a top-level term (not inside a division or modulo)."""
    return all(var not in atom_vars for atom_vars in (_inner_vars(a) for a, _ in index.terms))


def _inner_vars(atom) -> set[Var]:
    from qimeng.kernels.engine.ir.index import atom_variables

    return set() if isinstance(atom, Var) else atom_variables(atom)


def _mergeable(indices: list[Index], outer: Var, inner: Var) -> bool:
    for index in indices:
        if not (_only_linear(index, outer) and _only_linear(index, inner)):
            return False
        if index.coeff(outer) != index.coeff(inner) * inner.size:
            return False
    return True


def _merge(index: Index, outer: Var, inner: Var, merged: Var) -> Index:
    coeffs = dict(index.terms)
    c = coeffs.pop(inner, 0)
    coeffs.pop(outer, None)
    if c:
        coeffs[merged] = c
    return Index._make(coeffs, index.const)


def order_by_store(kernel: Kernel) -> Kernel:
    """A pointwise kernel's parallel variables in the order its first store runs through memory (largest
    stride first), so that consecutive positions are consecutive addresses: an NHWC store walks the
    channels innermost. A no-op for row-major stores."""
    if kernel.reduce or not kernel.stores:
        return kernel
    coeff = dict((v, c) for v, c in kernel.stores[0].index.terms if isinstance(v, Var))
    ordered = tuple(sorted(kernel.parallel, key=lambda v: -abs(coeff.get(v, 0))))
    return kernel if ordered == kernel.parallel else replace(kernel, parallel=ordered)


def coalesce(kernel: Kernel) -> Kernel:
    """Merge adjacent variables that every index uses as one row-major run (fewer divisions)."""
    for axis in ("parallel", "reduce"):
        changed = True
        while changed:
            changed = False
            vars_ = list(getattr(kernel, axis))
            indices = kernel_indices(kernel)
            for i in range(len(vars_) - 1):
                outer, inner = vars_[i], vars_[i + 1]
                if _mergeable(indices, outer, inner):
                    merged = Var(outer.name, outer.size * inner.size)
                    new_vars = tuple(vars_[:i]) + (merged,) + tuple(vars_[i + 2:])
                    # the merged var reuses outer's name: substitute inner first into a temporary
                    tmp = Var(outer.name + "_m", merged.size)
                    k = map_kernel(kernel, lambda ix: _merge(ix, outer, inner, tmp),
                                   kernel.parallel, kernel.reduce)
                    k = map_kernel(k, lambda ix: ix.substitute({tmp: Index.of(merged)}),
                                   new_vars if axis == "parallel" else kernel.parallel,
                                   new_vars if axis == "reduce" else kernel.reduce)
                    kernel = k
                    changed = True
                    break
    return drop_unit_vars(kernel)


def drop_unit_vars(kernel: Kernel) -> Kernel:
    """Variables of size 1 are always 0."""
    units = {v: Index() for v in kernel.parallel + kernel.reduce if v.size == 1}
    if not units:
        return kernel
    parallel = tuple(v for v in kernel.parallel if v.size != 1)
    reduce = tuple(v for v in kernel.reduce if v.size != 1)
    if not reduce and kernel.reduce:
        reduce = (kernel.reduce[0],)  # a reduction kernel keeps one (size-1) reduce axis
        units.pop(kernel.reduce[0])
    return map_kernel(kernel, lambda ix: ix.substitute(units), parallel, reduce)
