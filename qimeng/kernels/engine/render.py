"""A schedule rendered into a full ``model_new.py`` candidate: its plan (generated kernels, template
units, LLM-coded regions in place of their PyTorch calls) and the file ``emit`` writes for it.

The search renders every candidate at the captured graph; the dynamic step renders the winner's
schedule again at graphs captured at other sizes, through this same function, so the generic file is
made from exactly what the search verified (templates and regions included).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from qimeng.kernels.engine.capture import Graph
from qimeng.kernels.engine.emit import emit_model_new
from qimeng.kernels.engine.lowering_plan import Plan, build_plan
from qimeng.kernels.engine.steps import Schedule
from qimeng.kernels.engine.templates.plan import TemplateUnit, with_templates

Regions = dict[str, tuple[str, str]]  # extern node -> (verified code, its function), the LLM micro coder's


@dataclass
class Rendered:
    """A rendered candidate: its source ("" when it makes no kernel at all), plan and a short note."""

    source: str
    plan: Plan
    note: str


def render_schedule(problem_source: str, model_cls: type, graph: Graph, schedule: Schedule, device_type: str,
                    regions: Regions | None = None) -> Rendered:
    """``schedule`` on ``graph``: build the plan, put templates in, emit ``model_new.py``."""
    plan = with_templates(graph, build_plan(graph, schedule), schedule, device_type)
    if regions:
        plan = replace(plan, fallbacks={n: why for n, why in plan.fallbacks.items() if n not in regions})
    templates = [f"{u.node.name}: {u.note}" for u in plan.units if isinstance(u, TemplateUnit)]
    if not plan.kernels and not regions and not templates and not schedule.cuda_graph:
        return Rendered("", plan, "no kernels")
    source = emit_model_new(problem_source, model_cls, graph, plan, device_type, schedule.precision, regions,
                            schedule.cuda_graph)
    kept = sorted(plan.fallbacks)
    note = (f"{len(plan.kernels)} kernels" + (f", {len(kept)} PyTorch calls" if kept else "")
            + (f", templates ({'; '.join(templates)})" if templates else "")
            + (", one CUDA graph" if schedule.cuda_graph else ""))
    return Rendered(source, plan, note)


def unit_count(plan: Plan) -> int:
    """Generated kernels and template units of a plan (what must come out the same at every size)."""
    return len(plan.kernels) + sum(isinstance(u, TemplateUnit) for u in plan.units)
