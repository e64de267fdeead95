"""Turn a graph and a schedule into an executable plan: kernels and PyTorch calls in a valid order.

Groups that cannot be lowered (or rendered) fall back to PyTorch calls for their nodes; the reason is
kept for the report. The plan is what ``emit`` writes out as ``ModelNew``.

Lowering and rendering happen once per group (its members, the strides of its inputs, its config) for
the life of a graph, and kernels of identical structure (same ops, shapes, strides and dtypes:
``Kernel.structural_hash``) share one name and one rendered Triton function: a network of repeated
layers compiles each distinct kernel once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from qimeng.kernels.engine.capture import Graph, Node, refs_in
from qimeng.kernels.engine.codegen.triton import CodegenError, Rendered, render
from qimeng.kernels.engine.ir.kernel import Kernel
from qimeng.kernels.engine.ir.index import contiguous_strides
from qimeng.kernels.engine.layout import active_convs, nhwc_values
from qimeng.kernels.engine.lowering import LoweringError, group_outputs, lower_group
from qimeng.kernels.engine.lowering_ops import extern_reason, op_class
from qimeng.kernels.engine.steps import KernelConfig, Schedule


@dataclass
class KernelUnit:
    kernel: Kernel
    rendered: Rendered
    group: tuple[str, ...]
    config: KernelConfig = KernelConfig()  # as the schedule asked for it (``rendered.config``: as resolved)


@dataclass
class ExternUnit:
    node: Node


@dataclass
class Plan:
    units: list[KernelUnit | ExternUnit]
    fallbacks: dict[str, str] = field(default_factory=dict)  # node -> why it stayed a PyTorch call
    channels_last: frozenset[str] = frozenset()  # vendor convolutions run on NHWC operands (layout.py)
    strides: dict[str, tuple[int, ...]] = field(default_factory=dict)  # values laid out NHWC around them

    @property
    def kernels(self) -> list[KernelUnit]:
        return [u for u in self.units if isinstance(u, KernelUnit)]


def build_plan(graph: Graph, schedule: Schedule) -> Plan:
    """Lower every group of ``schedule``; what cannot be lowered stays as PyTorch calls. With channels-last
    convolutions, the kernels are lowered again at the layout ``layout.nhwc_values`` gives their values
    (the plan without it when a kernel would be lost)."""
    plan = _build_plan(graph, schedule, {})
    convs = active_convs(graph, schedule)
    if not convs:
        return plan
    kernel_nodes = {n for u in plan.kernels for n in u.group}
    outputs = [b.name for u in plan.kernels for b in u.kernel.outputs]
    reads = {b.name: {i.name for i in u.kernel.inputs} for u in plan.kernels for b in u.kernel.outputs}
    layout = nhwc_values(graph, convs, kernel_nodes, outputs, reads)
    laid = _build_plan(graph, schedule, layout)
    if set(laid.fallbacks) != set(plan.fallbacks):
        return plan
    return replace(laid, channels_last=convs, strides=layout)


def _build_plan(graph: Graph, schedule: Schedule, layout: dict[str, tuple[int, ...]]) -> Plan:
    fallbacks: dict[str, str] = {}
    kernel_units: list[KernelUnit] = []
    in_kernels: set[str] = set()
    memberships = [with_getitems(graph, group) for group in schedule.groups]
    strides = {name: contiguous_strides(graph.meta(name).shape)  # kernel outputs are contiguous by default
               for members in memberships for name in group_outputs(graph, members)}
    strides.update(layout)
    for i, (group, members) in enumerate(zip(schedule.groups, memberships)):
        try:
            kernel, rendered = lowered(graph, members, strides, schedule.config(group))
        except (LoweringError, CodegenError) as exc:
            for n in group:
                fallbacks[n] = f"kernel {i} not generated: {exc}"
            continue
        kernel_units.append(KernelUnit(kernel, rendered, tuple(sorted(members, key=graph.position)),
                                       schedule.config(group)))
        in_kernels |= members
    units = _order_units(graph, kernel_units, in_kernels)
    if units is None:  # a group that is not convex: keep everything in PyTorch rather than guess
        return Plan([ExternUnit(n) for n in graph.nodes], {n.name: "kernel groups form a cycle" for n in graph.nodes})
    for n in graph.nodes:
        if n.name not in in_kernels and n.name not in fallbacks and op_class(n) == "extern":
            fallbacks[n.name] = extern_reason(n)
    return Plan(units, fallbacks)


def lowered(graph: Graph, members: set[str], strides: dict[str, tuple[int, ...]],
            config: KernelConfig) -> tuple[Kernel, Rendered]:
    """The kernel of a group and its rendering, cached on the graph; raises LoweringError/CodegenError."""
    cache = graph.__dict__.setdefault("_lowered", {})
    renders = graph.__dict__.setdefault("_rendered", {})
    read = {r.name for n in members for r in refs_in(graph.node(n).args) + refs_in(list(graph.node(n).kwargs.values()))}
    laid_out = tuple(sorted((o, strides[o]) for o in members  # outputs not contiguous (NHWC)
                            if o in strides and strides[o] != contiguous_strides(graph.meta(o).shape)))
    key = (frozenset(members), tuple(sorted((r, strides[r]) for r in read - members if r in strides)), config,
           laid_out)
    if key not in cache:
        try:
            kernel = lower_group(graph, members, "qm_kernel", strides)
            shape_key = kernel.structural_hash()
            kernel = replace(kernel, name=f"qm_kernel_{shape_key[:12]}")
            if (shape_key, config) not in renders:
                renders[(shape_key, config)] = render(kernel, config)
            cache[key] = (kernel, renders[(shape_key, config)])
        except (LoweringError, CodegenError) as exc:
            cache[key] = exc
    value = cache[key]
    if isinstance(value, Exception):
        raise value
    return value


def with_getitems(graph: Graph, group: tuple[str, ...]) -> set[str]:
    """The group's nodes plus the getitems of its multi-output nodes (they travel together)."""
    members = set(group)
    nodes, users = graph.node_names(), graph.users()
    for m in group:
        members.update(u for u in users.get(m, []) if u in nodes and nodes[u].target == "getitem")
    return members


def _order_units(graph: Graph, kernels: list[KernelUnit], lowered: set[str]) -> list | None:
    """Topological order of kernels and PyTorch calls (None when the dependencies form a cycle)."""
    unit_of: dict[str, int] = {}
    units: list[KernelUnit | ExternUnit] = []
    for k in kernels:
        for n in k.group:
            unit_of[n] = len(units)
        units.append(k)
    for n in graph.nodes:
        if n.name not in lowered:
            unit_of[n.name] = len(units)
            units.append(ExternUnit(n))
    deps: list[set[int]] = [set() for _ in units]
    for n in graph.nodes:
        u = unit_of[n.name]
        for r in refs_in(n.args) + refs_in(list(n.kwargs.values())):
            if r.name in unit_of and unit_of[r.name] != u:
                deps[u].add(unit_of[r.name])
    order, state = [], [0] * len(units)
    first = {i: min(graph.position(n) for n in (u.group if isinstance(u, KernelUnit) else (u.node.name,)))
             for i, u in enumerate(units)}

    def visit(i: int) -> bool:
        if state[i] == 2:
            return True
        if state[i] == 1:
            return False
        state[i] = 1
        for d in sorted(deps[i], key=first.__getitem__):
            if not visit(d):
                return False
        state[i] = 2
        order.append(units[i])
        return True

    for i in sorted(range(len(units)), key=first.__getitem__):
        if not visit(i):
            return None
    return order

