"""The pointwise kernel before a pooling, computed inside the pooling kernel (conv -> bias/BN/act -> pool).

When the pooling's input is written by one pointwise kernel (one store, one output) that nothing else
reads, the pooling evaluates that kernel's value at each tap of its window from the kernel's own inputs
(the convolution's output, cuDNN's or ours, and the parameters): the full-size activation is never written.
The kernel's value is re-expressed over the input's coordinates ``q0 .. q{rank-1}`` (``reexpress``, as the
GEMM epilogue is), its loads keeping the strides the kernel was lowered for.
"""

from __future__ import annotations

from dataclasses import dataclass

from qimeng.kernels.engine.capture import Graph, Ref
from qimeng.kernels.engine.ir.expr import Expr
from qimeng.kernels.engine.ir.index import Index, Var, contiguous_strides, delinearize, equivalent
from qimeng.kernels.engine.lowering_plan import KernelUnit
from qimeng.kernels.engine.templates.epilogue_from_kernel import reexpress

RESERVED = frozenset({"out", "idx"})  # the pooling kernel's own pointers


@dataclass(frozen=True)
class Prologue:
    value: Expr  # the pooling input's element at ``variables``
    variables: tuple[Var, ...]  # one per dim of the pooling's input
    operands: tuple[str, ...]  # what the value loads (pointers ``{name}_ptr``), in the kernel's order
    layout: tuple[int, ...]  # the strides of what it reads most: an operand of the input's shape (NHWC or not)
    kernel: KernelUnit  # the kernel folded in


def prologue_of(graph: Graph, units: list, name: str, pool_node: str) -> Prologue | str:
    """The kernel writing ``name`` (read by ``pool_node`` alone) as the pooling's prologue, or why not."""
    if any(isinstance(o, Ref) and o.name == name for o in graph.outputs) or any(v.name == name for v, _ in graph.mutations):
        return f"{name} is an output of the forward"
    if set(graph.users().get(name, [])) != {pool_node}:
        return f"{name} has other readers"
    unit = next((u for u in units if isinstance(u, KernelUnit) and name in {b.name for b in u.kernel.outputs}), None)
    if unit is None:
        return f"{name} is not written by a kernel"
    kernel = unit.kernel
    if kernel.kind != "pointwise" or len(kernel.stores) != 1 or len(kernel.outputs) != 1:
        return "not a pointwise kernel with one store"
    out = kernel.outputs[0]
    if {b.name for b in kernel.inputs} & RESERVED:
        return f"buffer names {sorted({b.name for b in kernel.inputs} & RESERVED)} are the pooling kernel's own"
    variables = tuple(Var(f"q{j}", size) for j, size in enumerate(out.shape))
    flat = sum((Index.of(v) * st for v, st in zip(variables, out.stride) if v.size > 1), Index())
    if kernel.parallel_size != graph.meta(name).numel:
        return f"iteration space {kernel.parallel_size} is not the input's {graph.meta(name).numel}"
    dense = sum((Index.of(v) * st for v, st in zip(variables, contiguous_strides(out.shape)) if v.size > 1), Index())
    to_input = dict(zip(kernel.parallel, delinearize(dense, tuple(v.size for v in kernel.parallel))))
    if not equivalent(kernel.stores[0].index.substitute(to_input), flat):
        return "the kernel's store is not its output's element"
    value = reexpress(kernel.stores[0].value, to_input, {})
    if isinstance(value, str):
        return value
    layout = next((b.stride for b in kernel.inputs if b.shape == out.shape), out.stride)
    return Prologue(value, variables, tuple(b.name for b in kernel.inputs), layout, unit)

