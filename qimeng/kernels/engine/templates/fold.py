"""Folding the epilogue kernel after a template's product into the template (GEMM and convolution).

The product (``value``: an expression of ``ACC``, bias included) is written as ``[batch, m, n]``
contiguous; when its only reader is one pointwise kernel that ``epilogue_from_kernel`` re-expresses
over that space, the kernel's value (with ``ACC`` standing for the product) becomes the template's
epilogue and the kernel's output the template's output. With ``rows`` (the GEMM template), a reduction
kernel over the product's N axis folds in too: its element value is the epilogue, its reduction the
template's :class:`RowReduce`, its ``[batch, M]`` output the template's; a reduction kernel of rows that fit
one tile (softmax, log-softmax, logsumexp) folds in as an epilogue with row statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

from qimeng.kernels.engine.capture import Graph, Node
from qimeng.kernels.engine.ir.expr import Expr, Op, ReduceRef
from qimeng.kernels.engine.lowering_plan import KernelUnit
from qimeng.kernels.engine.templates.epilogue import ACC, Epilogue, Operand, RowReduce, RowStatistic
from qimeng.kernels.engine.templates.epilogue_from_kernel import (epilogue_from_kernel, row_kernel_from_kernel,
                                                                 row_reduction_from_kernel)
from qimeng.kernels.engine.templates.unit import sole_reader


@dataclass(frozen=True)
class Fold:
    epilogue: Epilogue
    output: str  # the forward value the template defines
    out_dtype: str
    shape: tuple[int, ...]
    folded: KernelUnit | None  # the kernel folded in
    note: str
    rows: RowReduce | None = None  # the reduction over N the template stores instead of the product


def with_acc(e: Expr, base: Expr) -> Expr:
    """``e`` with every ``ACC`` replaced by ``base``."""
    if isinstance(e, ReduceRef) and e == ACC:
        return base
    if isinstance(e, Op):
        return Op(e.name, tuple(with_acc(a, base) for a in e.args), e.dtype)
    return e


def fold(graph: Graph, units: list, node: Node, batch: int, m: int, n: int, value: Expr,
         operands: tuple[Operand, ...], rows: bool = False) -> Fold:
    """The template's epilogue for ``node``'s product ``value``: the reader kernel's, where it folds in
    (with ``rows``, a reduction kernel over N too)."""
    reader = sole_reader(graph, units, node.name)
    fused = None
    if reader is not None:
        reduces = rows and reader.kernel.kind == "reduction"
        fused = (row_reduction_from_kernel if reduces else epilogue_from_kernel)(reader.kernel, node.name, batch, m, n)
        if reduces and isinstance(fused, str):  # several reductions, or an element store: rows in one tile
            whole = row_kernel_from_kernel(reader.kernel, node.name, batch, m, n)
            fused = whole if not isinstance(whole, str) else f"{fused}; {whole}"
    if reader is None or isinstance(fused, str):
        note = f"epilogue kept apart: {fused}" if fused else "no epilogue kernel"
        return Fold(Epilogue(value, operands), node.name, node.meta.dtype, node.meta.shape, None, note)
    extra = tuple(o for o in fused.epilogue.operands if o not in operands)
    shape = next(b.shape for b in reader.kernel.outputs if b.name == fused.output)
    row_reduce = getattr(fused, "rows", None)
    e = fused.epilogue
    note = "epilogue folded in" if row_reduce is None else f"row {row_reduce.op} over N folded in (no [M, N] written)"
    if e.whole_rows:
        note = f"row statistics ({', '.join(st.op for st in e.statistics)}) over whole rows in one tile folded in"
    statistics = tuple(RowStatistic(st.name, st.op, with_acc(st.value, value)) for st in e.statistics)
    return Fold(Epilogue(with_acc(e.value, value), operands + extra, statistics, e.per_row), fused.output,
                fused.out_dtype, shape, reader, note, row_reduce)
