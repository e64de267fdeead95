"""A reduction kernel that also writes a pooling's input, split for the pooling's prologue: batch norm in
training mode (statistics over the batch, then every element normalised and activated) becomes the
reduction without its full-size tail (the statistics and the running-stat updates) and the tail alone, a
pointwise kernel that ``pool_prologue`` then has the pooling compute at each tap.

The tail is the group's full-size pointwise nodes and the small ones only they read (``rsqrt(var + eps)``,
views of the affine parameters); both halves are lowered again, at the strides the kernel read its inputs.
"""

from __future__ import annotations

from qimeng.kernels.engine.capture import Graph, TensorMeta, refs_in
from qimeng.kernels.engine.codegen.triton import CodegenError
from qimeng.kernels.engine.ir.index import contiguous_strides
from qimeng.kernels.engine.lowering import LoweringError, group_outputs
from qimeng.kernels.engine.lowering_ops import op_class
from qimeng.kernels.engine.lowering_plan import KernelUnit, lowered
from qimeng.kernels.engine.steps import KernelConfig


def split_tail(graph: Graph, unit: KernelUnit, name: str) -> tuple[KernelUnit, KernelUnit] | str:
    """(the reduction without the tail writing ``name``, the tail) of ``unit``, or why it does not split."""
    if unit.kernel.kind != "reduction":
        return "not a reduction kernel"
    size, group, users = graph.meta(name).numel, set(unit.group), graph.users()

    def pointwise(n: str) -> bool:
        return op_class(graph.node(n)) == "pointwise" and isinstance(graph.node(n).meta, TensorMeta)

    tail = {n for n in group if pointwise(n) and graph.meta(n).numel == size}
    for n in sorted(group - tail, key=graph.position, reverse=True):  # readers before what they read
        if pointwise(n) and users.get(n) and set(users[n]) <= tail:
            tail.add(n)
    head = group - tail
    if name not in tail or group_outputs(graph, tail) != [name]:
        return f"the full-size part of the reduction kernel writes more than {name}"
    if any(r.name in tail for n in head for r in refs_in(graph.node(n).args) + refs_in(list(graph.node(n).kwargs.values()))):
        return "the reduction reads its full-size part"
    strides = {b.name: b.stride for b in unit.kernel.inputs}
    strides.update({o: contiguous_strides(graph.meta(o).shape) for o in group_outputs(graph, head) + [name]})
    try:
        # the reduction with the blocks the schedule gave the whole (tuned, or pinned by a shape-generic file),
        # else as the codegen picks for it alone
        blocks = unit.config if unit.config.block_p or unit.config.block_r else KernelConfig()
        parts = [(members, lowered(graph, members, strides, config))
                 for members, config in ((head, blocks), (tail, KernelConfig()))]
    except (LoweringError, CodegenError) as exc:
        return f"the reduction kernel does not split: {exc}"
    (head_units, (head_k, head_r)), (tail_units, (tail_k, tail_r)) = parts
    if tail_k.kind != "pointwise":
        return "its full-size part is not pointwise"
    return (KernelUnit(head_k, head_r, tuple(sorted(head_units, key=graph.position))),
            KernelUnit(tail_k, tail_r, tuple(sorted(tail_units, key=graph.position))))

