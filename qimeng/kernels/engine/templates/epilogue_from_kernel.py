"""The engine's epilogue kernel of a GEMM as a template epilogue: the seam between lowering and ``gemm()``.

The expert policy groups a GEMM (``mm``/``addmm``/``bmm``, a vendor call) with the pointwise chain after
it; lowering makes that chain one pointwise kernel that loads the GEMM's output buffer. Here that
kernel's store value becomes an :class:`Epilogue`: its parallel variables are re-expressed over the
output tile's ``(b, m, n)``, the load of the product becomes ``ACC`` (cast to the product's dtype, as
the reference rounds it there), and every other load becomes an operand of the same name.
A reduction kernel over the product's last axis (sum, mean, amax/amin, max values) becomes, by
``row_reduction_from_kernel``, an epilogue of each element and a :class:`RowReduce` of the rows, so that the
template writes ``[batch, M]`` and never the product. A reduction kernel of rows that fit one tile (softmax,
log-softmax, logsumexp: several reductions, an element or a row store) becomes, by ``row_kernel_from_kernel``, an
epilogue with row statistics.
``reexpress`` (a kernel's value over another iteration space) serves the pooling's prologue too.
"""

from __future__ import annotations

from dataclasses import dataclass

from qimeng.kernels.engine.ir.expr import Const, Expr, IndexValue, Load, Op, ReduceRef, cast
from qimeng.kernels.engine.ir.index import Index, Var, delinearize, equivalent
from qimeng.kernels.engine.ir.kernel import Kernel
from qimeng.kernels.engine.templates.epilogue import (ACC, B_VAR, M_VAR, MAX_ROW_N, N_VAR, RESERVED, ROW, ROW_OPS,
                                                      Epilogue, Operand, RowReduce, RowStatistic)


@dataclass(frozen=True)
class FusedEpilogue:
    epilogue: Epilogue
    output: str  # the buffer the kernel stored: the GEMM template's output now
    out_dtype: str


@dataclass(frozen=True)
class FusedRowReduction:
    epilogue: Epilogue  # each element's value, reduced over N
    rows: RowReduce
    output: str  # the [batch, M] buffer the kernel stored (any size-1 axes kept)
    out_dtype: str


class _NotApplicable(Exception):
    pass


def epilogue_from_kernel(kernel: Kernel, product: str, batch: int, m: int, n: int) -> FusedEpilogue | str:
    """``kernel`` (pointwise, one store of the contiguous ``[batch, m, n]`` result) reading the GEMM
    output ``product``, as a fused epilogue; or the reason it does not apply, as a string."""
    if kernel.kind != "pointwise" or len(kernel.stores) != 1:
        return "not a pointwise kernel with one store"
    if kernel.parallel_size != batch * m * n:
        return f"iteration space {kernel.parallel_size} is not the product's {batch}x{m}x{n}"
    names = {b.name for b in kernel.inputs} - {product}
    if names & RESERVED or product not in {b.name for b in kernel.inputs}:
        return f"buffer names {sorted(names & RESERVED)} are reserved, or {product} is not read"
    vb, vm, vn = Var("b", batch), Var("m", m), Var("n", n)  # true ranges, for simplification
    flat = Index.of(vb) * (m * n) + Index.of(vm) * n + Index.of(vn)
    digits = delinearize(flat, tuple(v.size for v in kernel.parallel))
    to_tile = dict(zip(kernel.parallel, digits))
    to_placeholders = {vb: Index.of(B_VAR), vm: Index.of(M_VAR), vn: Index.of(N_VAR)}
    store = kernel.stores[0]
    if not equivalent(store.index.substitute(to_tile), flat):
        return "the store is not the contiguous [batch, M, N] output"
    value = reexpress(store.value, to_tile, to_placeholders, product, flat)
    if isinstance(value, str):
        return value
    operands = tuple(Operand(b.name, b.dtype) for b in kernel.inputs if b.name != product)
    out = next(b for b in kernel.outputs if b.name == store.buffer)
    return FusedEpilogue(Epilogue(value, operands), store.buffer, out.dtype)


def row_reduction_from_kernel(kernel: Kernel, product: str, batch: int, m: int,
                              n: int) -> FusedRowReduction | str:
    """``kernel`` (one sum/max/min over the product's N axis per ``(batch, m)`` row, one row store of a
    function of it, contiguous) as an element epilogue and row reduction; or the reason it does not apply."""
    if kernel.kind != "reduction" or len(kernel.reductions) != 1 or len(kernel.stores) != 1:
        return "not a reduction kernel with one reduction and one store"
    red, store = kernel.reductions[0], kernel.stores[0]
    if red.op not in ROW_OPS or red.dtype != "float32" or not store.row:
        return f"a {red.dtype} {red.op} reduction, not a float32 sum, max or min of rows"
    if kernel.parallel_size != batch * m or kernel.reduce_size != n:
        return f"rows {kernel.parallel_size} x {kernel.reduce_size} are not the product's {batch}x{m} x {n}"
    space = _row_space(kernel, product, batch, m, n)
    if isinstance(space, str):
        return space
    to_tile, to_placeholders, row_flat, flat = space
    if not equivalent(store.index.substitute(to_tile), row_flat):
        return "the store is not the contiguous [batch, M] output"
    value = reexpress(red.value, to_tile, to_placeholders, product, flat)
    if isinstance(value, str):
        return value
    finish = _finish(store.value, red.name)
    if finish is None:
        return "the stored row value reads more than its reduction"
    operands = tuple(Operand(b.name, b.dtype) for b in kernel.inputs if b.name != product)
    out = next(b for b in kernel.outputs if b.name == store.buffer)
    return FusedRowReduction(Epilogue(value, operands), RowReduce(red.op, finish), store.buffer, out.dtype)


def row_kernel_from_kernel(kernel: Kernel, product: str, batch: int, m: int, n: int) -> FusedEpilogue | str:
    """``kernel`` (float32 sums/maxima/minima over the product's N axis per ``(batch, m)`` row, N at most
    ``MAX_ROW_N``, one contiguous store: ``[batch, M, N]`` elements or ``[batch, M]`` rows) as an epilogue
    with row statistics; or the reason it does not apply."""
    if kernel.kind != "reduction" or len(kernel.stores) != 1:
        return "not a reduction kernel with one store"
    if any(r.op not in ROW_OPS or r.dtype != "float32" for r in kernel.reductions):
        return "a reduction that is not a float32 sum, max or min"
    if kernel.parallel_size != batch * m or kernel.reduce_size != n or n > MAX_ROW_N:
        return f"rows {kernel.parallel_size} x {kernel.reduce_size} are not the product's {batch}x{m} x {n} <= {MAX_ROW_N}"
    space = _row_space(kernel, product, batch, m, n)
    if isinstance(space, str):
        return space
    to_tile, to_placeholders, row_flat, flat = space
    store = kernel.stores[0]
    if not equivalent(store.index.substitute(to_tile), row_flat if store.row else flat):
        return "the store is not the contiguous [batch, M] or [batch, M, N] output"
    refs = frozenset(r.name for r in kernel.reductions)
    statistics = []
    for r in kernel.reductions:
        value = reexpress(r.value, to_tile, to_placeholders, product, flat, refs)
        if isinstance(value, str):
            return value
        statistics.append(RowStatistic(r.name, r.op, value))
    value = reexpress(store.value, to_tile, to_placeholders, product, flat, refs)
    if isinstance(value, str):
        return value
    operands = tuple(Operand(b.name, b.dtype) for b in kernel.inputs if b.name != product)
    out = next(b for b in kernel.outputs if b.name == store.buffer)
    return FusedEpilogue(Epilogue(value, operands, tuple(statistics), store.row), store.buffer, out.dtype)


def _row_space(kernel: Kernel, product: str, batch: int, m: int, n: int) -> tuple[dict, dict, Index, Index] | str:
    """The product's ``[batch, M, N]`` space seen from a row kernel over it: (the kernel's variables in
    tile terms, the tile variables as the epilogue's placeholders, the flat row index, the flat element
    index); or why the kernel's buffers do not allow it."""
    names = {b.name for b in kernel.inputs} - {product}
    if names & RESERVED or product not in {b.name for b in kernel.inputs}:
        return f"buffer names {sorted(names & RESERVED)} are reserved, or {product} is not read"
    vb, vm, vn = Var("b", batch), Var("m", m), Var("n", n)
    row_flat = Index.of(vb) * m + Index.of(vm)
    to_tile = dict(zip(kernel.parallel, delinearize(row_flat, tuple(v.size for v in kernel.parallel))))
    to_tile.update(zip(kernel.reduce, delinearize(Index.of(vn), tuple(v.size for v in kernel.reduce))))
    to_placeholders = {vb: Index.of(B_VAR), vm: Index.of(M_VAR), vn: Index.of(N_VAR)}
    return to_tile, to_placeholders, row_flat, row_flat * n + Index.of(vn)


def _finish(value: Expr, reduced: str) -> Expr | None:
    """``value`` with the reduction ``reduced`` as ``ROW``; None when it reads anything else."""
    if isinstance(value, ReduceRef):
        return ROW if value.name == reduced else None
    if isinstance(value, Const):
        return value
    if isinstance(value, Op):
        args = [_finish(a, reduced) for a in value.args]
        return None if any(a is None for a in args) else Op(value.name, tuple(args), value.dtype)
    return None


def reexpress(value: Expr, to_tile: dict[Var, Index], to_out: dict[Var, Index], product: str | None = None,
              flat: Index | None = None, refs: frozenset[str] = frozenset()) -> Expr | str:
    """``value`` (a pointwise kernel's store value) with its parallel variables replaced by ``to_tile``'s
    indices, then those by ``to_out``'s; a load of ``product`` at ``flat`` becomes ``ACC`` (cast to the
    load's dtype); the reductions named in ``refs`` stay. The reason, as a string, where that cannot be done."""
    memo: dict[Expr, Expr] = {}

    def rewrite(e: Expr) -> Expr:
        if e in memo:
            return memo[e]
        if isinstance(e, Const) or (isinstance(e, ReduceRef) and e.name in refs):
            out: Expr = e
        elif isinstance(e, Load):
            index = e.index.substitute(to_tile)
            if e.buffer == product:
                if e.mask is not None or flat is None or not equivalent(index, flat):
                    raise _NotApplicable(f"{product} is read at another element than the one stored")
                out = cast(ACC, e.dtype)
            else:
                out = Load(e.buffer, index.substitute(to_out), e.dtype,
                           None if e.mask is None else rewrite(e.mask), e.other)
        elif isinstance(e, IndexValue):
            out = IndexValue(e.index.substitute(to_tile).substitute(to_out), e.dtype)
        elif isinstance(e, Op):
            out = Op(e.name, tuple(rewrite(a) for a in e.args), e.dtype)
        else:
            raise _NotApplicable(f"{type(e).__name__} in a pointwise epilogue")
        memo[e] = out
        return out

    try:
        return rewrite(value)  # the template casts it to the output's dtype when it stores
    except _NotApplicable as exc:
        return str(exc)
