"""Templates in a plan: each ``(node, variant)`` of ``Schedule.templates`` replaces the node's PyTorch
call by the :class:`TemplateUnit` of its template (GEMM, convolution, direct depthwise convolution, pooling;
attention, which replaces every unit of the attention's nodes and comes first: its products are then no
GEMM's to take).

``template_variants`` answers which nodes a template can take and in which variants (the expert's
choice first); ``with_templates`` rewrites the plan ``build_plan`` made (a GEMM or attention unit at its
``Schedule.template_configs`` entry, the tuning stage's choice, else at ``default_config``). A node a template cannot
take stays a PyTorch call, with the reason among the plan's fallbacks.
"""

from __future__ import annotations

from dataclasses import replace

from qimeng.kernels.engine.capture import Graph, Node
from qimeng.kernels.engine.lowering_plan import ExternUnit, Plan
from qimeng.kernels.engine.steps import Schedule
from qimeng.kernels.engine.templates import attention_plan, conv_plan, depthwise_plan, gemm_plan, pool_plan
from qimeng.kernels.engine.templates.attention_match import attention_of
from qimeng.kernels.engine.templates.unit import TemplateUnit


def template_variants(graph: Graph, node: Node, policy: str, measured: dict[int, str] | None = None) -> list[str]:
    """The variants a template can compute ``node`` in under ``policy`` ([] when none applies)."""
    att = attention_of(graph, node)
    if not isinstance(att, str):
        return attention_plan.variants(policy, att, measured)
    problem = gemm_plan.template_problem(graph, node)
    if not isinstance(problem, str):
        return gemm_plan.variants(policy, problem, measured)
    if not isinstance(depthwise_plan.depthwise_of(graph, node), str):
        return [depthwise_plan.VARIANT]
    conv = conv_plan.conv_of(graph, node)
    if not isinstance(conv, str):
        return gemm_plan.variants(policy, conv_plan.conv_problem(conv), measured)
    if not isinstance(pool_plan.pool_of(graph, node), str):
        return ["direct"]
    return []


def template_ks(graph: Graph) -> list[int]:
    """The K of every product a GEMM, convolution or attention template could compute (strict's
    measurement; the direct depthwise kernel has no product)."""
    ks = []
    for node in graph.nodes:
        problem = gemm_plan.template_problem(graph, node)
        conv = conv_plan.conv_of(graph, node)
        att = attention_of(graph, node)
        if not isinstance(att, str):
            ks.append(att.sizes[5])
        elif not isinstance(problem, str):
            ks.append(problem.k)
        elif not isinstance(conv, str) and isinstance(depthwise_plan.depthwise_of(graph, node), str):
            ks.append(conv.k)
    return ks


def _unit(graph: Graph, node: Node, variant: str, schedule: Schedule, units: list, device_type: str):
    policy = schedule.precision
    if node.target in pool_plan.POOL_TARGETS:
        return pool_plan.pool_unit(graph, node, units)
    if not isinstance(depthwise_plan.depthwise_of(graph, node), str):
        return depthwise_plan.depthwise_unit(graph, node, units)
    if node.target == conv_plan.CONV_TARGET:
        return conv_plan.conv_unit(graph, node, variant, policy, units, device_type)
    return gemm_plan.template_unit(graph, node, variant, policy, units, device_type, dict(schedule.template_configs))


def _ends_attention(graph: Graph, name: str) -> bool:
    nodes = graph.node_names()
    return name in nodes and not isinstance(attention_of(graph, nodes[name]), str)


def with_templates(graph: Graph, plan: Plan, schedule: Schedule, device_type: str) -> Plan:
    """``plan`` with each node of ``schedule.templates`` computed by its template where it applies."""
    units = list(plan.units)
    fallbacks = dict(plan.fallbacks)
    for name, variant in sorted(schedule.templates, key=lambda t: not _ends_attention(graph, t[0])):
        if _ends_attention(graph, name):
            made = attention_plan.with_attention(graph, units, graph.node(name), variant, schedule.precision,
                                                 device_type, dict(schedule.template_configs))
            if not isinstance(made, str):
                units, taken = made
                fallbacks = {n: why for n, why in fallbacks.items() if n not in taken}
                continue
            fallbacks[name] = f"template not used: {made}"  # a GEMM template may still take its product
        at = next((i for i, u in enumerate(units) if isinstance(u, ExternUnit) and u.node.name == name), None)
        if at is None:
            continue
        made = _unit(graph, units[at].node, variant, schedule, units, device_type)
        if isinstance(made, str):
            fallbacks[name] = f"template not used: {made}"
            continue
        unit, folded = made
        fallbacks.pop(name, None)
        if folded is None:
            units[at] = unit
        else:  # at the folded kernel's place: its other inputs are ready there
            units[next(i for i, u in enumerate(units) if u is folded)] = unit  # by identity: no deep comparison
            del units[at]
            place = next(i for i, u in enumerate(units) if u is unit)
            units[place:place] = list(unit.before)
    return replace(plan, units=units, fallbacks=fallbacks)


__all__ = ["TemplateUnit", "template_ks", "template_variants", "with_templates"]
