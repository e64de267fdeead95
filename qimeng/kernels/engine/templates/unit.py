"""A node (and the epilogue kernel folded into it) computed by one of our templates, as a plan unit.

``emit`` writes each unit's ``runtime`` (its host routine, once per model) and ``source`` (its Triton
kernels) into ``model_new.py`` and its ``lines`` into the forward, in the unit's place in the plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from qimeng.kernels.engine.capture import Graph, Node, Ref
from qimeng.kernels.engine.lowering_plan import KernelUnit


@dataclass
class TemplateUnit:
    node: Node  # the node the template computes (a GEMM, a convolution, a pooling)
    group: tuple[str, ...]  # that node and the nodes of the epilogue kernel folded into it
    output: str  # the forward value it defines
    runtime: str  # host-side source the lines call (shared by every unit of the template), or ""
    source: str  # the kernels, module level
    lines: list[str]  # forward lines, indented for ``_qm_forward``
    strided_inputs: tuple[str, ...]  # values read at their captured strides
    note: str = ""
    variants: tuple[str, ...] = ()  # the precisions compiled in (the flag picks one at run time)
    configs: tuple[tuple[str, tuple[int, ...]], ...] = ()  # ("node/variant", launch tuple) it was rendered with
    before: tuple[KernelUnit, ...] = ()  # kernels run just before it, in its place (the rest of a split kernel)


def sole_reader(graph: Graph, units: list, name: str) -> KernelUnit | None:
    """The one kernel that reads ``name``, when nothing else does (no call, no output, no mutation)."""
    if any(isinstance(o, Ref) and o.name == name for o in graph.outputs) or any(
            v.name == name for v, _ in graph.mutations):
        return None
    users = graph.users().get(name, [])
    if not users:
        return None
    # a kernel reads ``name`` only through its nodes, and no node is in two kernels: the reader is the kernel
    # holding the first user, if it holds them all (one scan of the units' groups, not of every kernel's inputs)
    reader = next((u for u in units if isinstance(u, KernelUnit) and users[0] in u.group), None)
    if reader is None or not set(users) <= set(reader.group) or all(b.name != name for b in reader.kernel.inputs):
        return None
    return reader


def written_by_kernels(units: list) -> set[str]:
    """Values our kernels write contiguous, whatever strides capture recorded (a template that stands for
    a PyTorch call writes its output at the captured strides; one that folds a kernel in, contiguous)."""
    out = {b.name for u in units if isinstance(u, KernelUnit) for b in u.kernel.outputs}
    return out | {u.output for u in units if isinstance(u, TemplateUnit) and u.output != u.node.name}


def by_flag(flag: str, calls: list[list[str]]) -> list[str]:
    """Forward lines running ``calls[0]`` (the policy's variant), or with a second variant ``calls[1]``
    (TF32) while PyTorch's ``flag`` says its own op runs in TF32 too."""
    if len(calls) == 1:
        return calls[0]
    return [f"        if {flag}:", *calls[1], "        else:", *calls[0]]
