"""The shape-generic ``model_new.py`` of ``qimeng optimize``, verified at several shapes.

After the search has chosen a schedule at the captured shape, ``generalize`` emits it again at other
sizes of the dynamic dimensions (``dynamic_dims``) and turns the sizes into runtime arguments. The
generic file is then verified by the harness at the captured shape and at two more shapes of the
dynamic ranges (odd sizes: no multiple of any block size), each as a problem whose ``get_inputs``
is resized. In those checks a guard miss raises instead of running PyTorch, so a pass means the
kernels ran. Only a file that passes all three replaces the static one.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from qimeng.kernels.engine.dynamic_dims import DynamicDim, propose, resized
from qimeng.kernels.engine.emit import emit_model_new
from qimeng.kernels.engine.generalize import NotGeneric, generalize, odd_sizes
from qimeng.kernels.engine.lowering_plan import Plan, build_plan
from qimeng.kernels.engine.steps import Schedule
from qimeng.kernels.result import EvalOptions, EvalResult

FALLBACK_LINE = "            return _qm_fallback(self, _qm_args)"
REFUSE_LINE = "            raise RuntimeError('qimeng check: the kernels refused this call (guard miss)')"


@dataclass
class DynamicOutcome:
    """What became of the dynamic dimensions: the verified generic source (None: keep the static one),
    the dimensions it covers, each shape checked with its result, and why others stayed static."""

    source: str | None = None
    dims: list[DynamicDim] = field(default_factory=list)
    checks: list[tuple[dict[str, int], EvalResult | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def captured_result(self) -> EvalResult | None:
        return self.checks[0][1] if self.source is not None and self.checks else None


def pinned(schedule: Schedule, plan: Plan) -> Schedule:
    """``schedule`` with every group's config as the codegen resolved it at the captured sizes, so that
    other sizes render with the same blocks and strategy."""
    for group in schedule.groups:
        unit = next((u for u in plan.kernels if set(group) <= set(u.group)), None)
        if unit is not None:
            schedule = schedule.with_config(group[0], unit.rendered.config)
    return schedule


def refusing(source: str) -> str:
    """The generic source with a guard miss raising: the variant the checks run."""
    return source.replace(FALLBACK_LINE, REFUSE_LINE)


def resized_problem(problem_source: str, dims: list[DynamicDim], sizes: dict[str, int]) -> str:
    """The problem with ``get_inputs`` resized along the dynamic axes (cyclic repetition)."""
    sites = [(arg, axis, sizes[d.name]) for d in dims for arg, axis in d.sites]
    return problem_source.rstrip() + f'''


_qm_captured_inputs = get_inputs


def get_inputs():
    import torch as _qm_torch

    xs = list(_qm_captured_inputs())
    for arg, axis, n in {sites!r}:
        xs[arg] = xs[arg].index_select(axis, _qm_torch.arange(n) % xs[arg].shape[axis]).contiguous()
    return xs
'''


def make_dynamic(problem: Path, problem_source: str, model_cls: type, plan: Plan, schedule: Schedule,
                 user_args: list, *, small: bool, device_type: str, options: EvalOptions, specs: tuple[str, ...],
                 static: bool, evaluate: Callable[[Path, str, EvalOptions], EvalResult],
                 log: Callable[[str], None]) -> DynamicOutcome:
    """The verified generic source for the dimensions the graph allows (see the module docstring)."""
    from qimeng.kernels.engine.optimize import capture_problem

    dims = propose(user_args, specs, static)
    outcome = DynamicOutcome()
    if not dims:
        outcome.notes.append("static: " + ("--static" if static else "no batch or sequence dimension"))
        return outcome
    fixed = pinned(schedule, plan)

    def emit_at(sizes: dict[str, int]) -> str:
        _, graph = capture_problem(problem, small, lambda xs: resized(xs, dims, sizes))
        at = build_plan(graph, fixed)
        if len(at.kernels) != len(plan.kernels):
            raise NotGeneric(f"{len(at.kernels)} kernels instead of {len(plan.kernels)} at {sizes}")
        return emit_model_new(problem_source, model_cls, graph, at, device_type, fixed.precision)

    log("dynamic dimensions: trying " + "; ".join(d.describe() for d in dims))
    source, kept, notes = generalize(dims, emit_at, log)
    outcome.notes += [f"left static: {note}" for note in notes]
    if source is None:
        return outcome
    shapes = [{d.name: d.captured for d in kept}] + [{d.name: _pick(d, k) for d in kept} for k in range(2)]
    with tempfile.TemporaryDirectory(prefix="qimeng-dynamic-") as tmp:
        for i, sizes in enumerate(_distinct(shapes)):
            path = Path(tmp) / f"{problem.stem}_shape{i}.py"
            path.write_text(resized_problem(problem_source, kept, sizes))
            result = evaluate(path, refusing(source), options if i == 0 else replace(options, time_candidate=False))
            outcome.checks.append((sizes, result))
            verdict = "verified" if result.correct else f"{result.status.value}: {result.reason[:160]}"
            log(f"shape-generic kernels at {sizes}: {verdict}")
            if not result.correct:
                outcome.notes.append(f"static: the generic kernels failed at {sizes}: {verdict}")
                return outcome
    outcome.source, outcome.dims = source, kept
    return outcome


def _pick(dim: DynamicDim, k: int) -> int:
    """The k-th odd sample size of ``dim`` (its last one, or the captured size, when it has fewer)."""
    sizes = odd_sizes(dim) or [dim.captured]
    return sizes[min(k, len(sizes) - 1)]


def _distinct(shapes: list[dict[str, int]]) -> list[dict[str, int]]:
    out: list[dict[str, int]] = []
    for s in shapes:
        if s not in out:
            out.append(s)
    return out


def report_lines(outcome: DynamicOutcome, captured: list) -> list[str]:
    """The report's section on which shapes run the kernels."""
    lines = ["## Shapes that run the kernels", ""]
    if outcome.source is None:
        shapes = ", ".join(str(list(a.shape)) for a in captured if hasattr(a, "shape"))
        lines.append(f"- only the captured shape(s) {shapes}; every other call runs Model.forward (with a warning "
                     "once per shape)")
    else:
        for d in outcome.dims:
            lines.append(f"- dynamic {d.describe()}: sizes are runtime arguments of the kernels")
        lines.append("- every other size, dtype, stride pattern and device is as captured; anything else runs "
                     "Model.forward (with a warning once per shape)")
        for sizes, result in outcome.checks:
            lines.append(f"- verified at {sizes}: " + ("ok" if result is not None and result.correct else "failed"))
    lines += [f"- {note}" for note in outcome.notes]
    return lines + [""]
