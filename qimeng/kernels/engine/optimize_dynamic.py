"""The shape-generic ``model_new.py`` of ``qimeng optimize``, verified at several shapes.

After the search has chosen a schedule at the captured shape, ``generalize`` renders it again at other
sizes of the dynamic dimensions (``dynamic_dims``), through the search's own ``render`` (generated
kernels, template units with their block configs pinned, LLM-coded regions), and turns the sizes into
runtime arguments, with a block configuration per power-of-two bucket of the sizes (``buckets``). The
generic file is then verified by the harness at the captured shape, at two more shapes of the
dynamic ranges (odd sizes: no multiple of any block size) and at one shape of each bucket
configuration those do not run, each as a problem whose ``get_inputs`` is resized, all in one harness
call (one judge and one candidate worker, pointed at each shape's problem in turn). In those checks a
guard miss raises instead of running PyTorch, so a pass means the kernels ran. Only a file that
passes them all replaces the static one.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol

from qimeng.core.verdict import BadInput
from qimeng.kernels.engine import buckets
from qimeng.kernels.engine.capture import Graph, TensorMeta
from qimeng.kernels.engine.ir.index import contiguous_strides
from qimeng.kernels.engine.dynamic_dims import DynamicDim, propose, resized
from qimeng.kernels.engine.buckets import BucketKey, BucketTable
from qimeng.kernels.engine.generalize import NotGeneric, generalize, odd_sizes
from qimeng.kernels.engine.ir.kernel import Kernel
from qimeng.kernels.engine.lowering_plan import Plan
from qimeng.kernels.engine.render import Regions, Rendered, render_schedule, unit_count
from qimeng.kernels.engine.steps import KernelConfig, Schedule
from qimeng.kernels.engine.templates.unit import TemplateUnit
from qimeng.kernels.result import EvalOptions, EvalResult

Tuned = Callable[[Kernel], KernelConfig | None]  # a kernel's stored tuned config on the target, if any
FALLBACK_LINE = "            return _qm_fallback(self, _qm_args)"
REFUSE_LINE = "            raise RuntimeError('qimeng check: the kernels refused this call (guard miss)')"


class CheckShapes(Protocol):
    """Evaluate one candidate source on each problem file under its options, stopping early when
    ``stop()`` says so (``harness.evaluate.evaluate_problems``); each result goes to ``on_result`` first."""

    def __call__(self, problems: list[Path], candidate: str, options: list[EvalOptions], *,
                 on_result: Callable[[int, EvalResult], None], stop: Callable[[], bool]) -> list[EvalResult]: ...


@dataclass
class DynamicOutcome:
    """What became of the dynamic dimensions: the verified generic source (None: keep the static one),
    the dimensions it covers, each shape checked with its result, and why others stayed static."""

    source: str | None = None
    dims: list[DynamicDim] = field(default_factory=list)
    checks: list[tuple[dict[str, int], EvalResult | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    table: BucketTable = field(default_factory=BucketTable)

    @property
    def captured_result(self) -> EvalResult | None:
        return self.checks[0][1] if self.source is not None and self.checks else None


def pinned(schedule: Schedule, plan: Plan) -> Schedule:
    """``schedule`` with every group's config, and every template's block config, as resolved at the
    captured sizes, so that other sizes render with the same blocks and strategy."""
    for group in schedule.groups:
        # the kernel that holds the group's first node (a pool's or a GEMM's prologue may have taken some of
        # its other nodes)
        unit = next((u for u in plan.kernels if group[0] in u.group), None)
        if unit is not None:
            schedule = schedule.with_config(group[0], unit.rendered.config)
    fixed = tuple(sorted(c for u in plan.units if isinstance(u, TemplateUnit) for c in u.configs))
    return replace(schedule, template_configs=fixed) if fixed else schedule


def looped_where_dynamic(fixed: Schedule, plan: Plan, other: Plan) -> Schedule:
    """``fixed`` with every one-pass reduction whose length differs in ``other`` (the plan at other sizes of the
    dynamic dimensions) looped instead, in chunks of the captured length: one pass holds the captured row only."""
    for unit, there in zip(plan.kernels, other.kernels):
        config = unit.rendered.config
        if config.strategy == "one_pass" and unit.kernel.reduce_size != there.kernel.reduce_size:
            group = next((g for g in fixed.groups if g[0] in unit.group), None)
            if group is not None:
                fixed = fixed.with_config(group[0], replace(config, strategy="looped"))
    return fixed


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


def bucket_schedule(fixed: Schedule, plan_at: Plan, tuned: Tuned | None) -> Schedule:
    """``fixed`` with each group's config the tuned one of its kernel in ``plan_at`` (a plan at a bucket's
    size) where ``tuned`` knows one, else the expert default there in the same strategy; every template
    at its expert default there."""
    schedule = replace(fixed, template_configs=())
    for group in fixed.groups:
        unit = next((u for u in plan_at.kernels if set(group) <= set(u.group)), None)
        best = tuned(unit.kernel) if tuned is not None and unit is not None else None
        schedule = schedule.with_config(group[0], best or KernelConfig(strategy=fixed.config(group).strategy))
    return schedule


def generic_file(problem: Path, problem_source: str, model_cls: type, plan: Plan, schedule: Schedule,
                 dims: list[DynamicDim], *, small: bool, device_type: str, regions: Regions | None = None,
                 tuned: Tuned | None = None, log: Callable[[str], None] = lambda _: None,
                 captured: Graph | None = None, stop: Callable[[], bool] = lambda: False
                 ) -> tuple[str | None, list[DynamicDim], list[str], BucketTable]:
    """The generic source over ``dims`` with its bucket table, unverified (``generalize``): the dimensions
    it covers, and why others stayed static or buckets run the captured configuration. ``captured``: the
    graph the search captured (used at the captured sizes instead of a capture again; the captures at
    other sizes take its ``mode_specific``). ``stop()`` true before a capture at another size ends the
    attempt there (a deep network's capture takes seconds: the run's budget decides)."""
    from qimeng.kernels.engine.optimize import capture_problem

    graphs: dict[tuple, Graph] = {}
    notes: list[str] = []
    if captured is not None and _resize_keeps(captured, dims):
        graphs[tuple(sorted((d.name, d.captured) for d in dims))] = captured
    known_mode = captured.mode_specific if captured is not None else None

    def render_at(sizes: dict[str, int], sched: Schedule) -> Rendered:
        key = tuple(sorted({**{d.name: d.captured for d in dims}, **sizes}.items()))
        if key not in graphs:
            if stop():
                raise NotGeneric("the run's budget is spent")
            graphs[key] = capture_problem(problem, small, lambda xs: resized(xs, dims, sizes), known_mode)[1]
        made = render_schedule(problem_source, model_cls, graphs[key], sched, device_type, regions)
        if unit_count(made.plan) != unit_count(plan):
            raise NotGeneric(f"{unit_count(made.plan)} kernels and templates instead of {unit_count(plan)} at {sizes}")
        return made

    fixed = pinned(schedule, plan)
    larger = {d.name: sizes[-1] for d in dims if (sizes := odd_sizes(d))}
    try:
        fixed = looped_where_dynamic(fixed, plan, render_at(larger, fixed).plan)
    except Exception:  # noqa: BLE001 - a schedule that does not apply there: generalize says why
        pass

    def variants(kept: list[DynamicDim]) -> list[tuple[BucketKey, str]]:
        captured = {d.name: d.captured for d in kept}
        out = []
        for key, sizes in buckets.star(kept):
            try:
                at = bucket_schedule(fixed, render_at(sizes, replace(fixed, template_configs=())).plan, tuned)
                out.append((key, render_at(captured, pinned(at, render_at(sizes, at).plan)).source))
            except Exception as exc:  # noqa: BLE001 - a bucket that does not render keeps the captured row
                notes.append(f"bucket {buckets.describe(key, kept)}: {exc}; it runs the captured configuration"[:240])
        return out

    source, kept, static, table = generalize(dims, lambda sizes: render_at(sizes, fixed).source, log, variants)
    return source, kept, [f"left static: {n}" for n in static] + notes, table


def _resize_keeps(graph: Graph, dims: list[DynamicDim]) -> bool:
    """Do the inputs ``resized`` at the captured sizes have ``graph``'s shapes and strides (each dynamic
    argument contiguous: its resized copy is)?"""
    args = graph.user_args
    return all(isinstance(args[a], TensorMeta) and args[a].stride == contiguous_strides(args[a].shape)
               for d in dims for a, _ in d.sites)


def make_dynamic(problem: Path, problem_source: str, model_cls: type, plan: Plan, schedule: Schedule,
                 graph: Graph, *, small: bool, device_type: str, options: EvalOptions, specs: tuple[str, ...],
                 static: bool, evaluate: CheckShapes,
                 log: Callable[[str], None], regions: Regions | None = None,
                 tuned: Tuned | None = None, stop: Callable[[], bool] = lambda: False) -> DynamicOutcome:
    """The verified generic source for the dimensions the graph allows (see the module docstring);
    ``regions``: the winner's LLM-coded regions, rendered as the search rendered them; ``tuned``: the
    stored tuned config of a kernel, for the buckets' configurations (``buckets``). The shapes are checked
    in one ``evaluate`` call (one judge and one worker, pointed at each shape's problem in turn), the
    captured one first and timed, and none after the first failure."""
    dims = propose(graph.user_args, specs, static)
    outcome = DynamicOutcome()
    if not dims:
        outcome.notes.append("static: " + ("--static" if static else "no batch or sequence dimension"))
        return outcome
    log("dynamic dimensions: trying " + "; ".join(d.describe() for d in dims))
    source, kept, notes, table = generic_file(problem, problem_source, model_cls, plan, schedule, dims, small=small,
                                              device_type=device_type, regions=regions, tuned=tuned, log=log,
                                              captured=graph, stop=stop)
    outcome.notes += notes
    if source is None:
        return outcome
    outcome.table = table
    for key, row in table.rows.items():
        log(f"bucket {buckets.describe(key, kept)}: block configuration {row} (captured {table.default})")
    shapes = check_shapes(kept, table)

    def arrived(index: int, result: EvalResult) -> None:
        outcome.checks.append((shapes[index], result))
        verdict = "verified" if result.correct else f"{result.status.value}: {result.reason[:160]}"
        log(f"shape-generic kernels at {shapes[index]}: {verdict}")
        if not result.correct:
            outcome.notes.append(f"static: the generic kernels failed at {shapes[index]}: {verdict}")

    with tempfile.TemporaryDirectory(prefix="qimeng-dynamic-") as tmp:
        paths = [Path(tmp) / f"{problem.stem}_shape{i}.py" for i in range(len(shapes))]
        for path, sizes in zip(paths, shapes):
            path.write_text(resized_problem(problem_source, kept, sizes))
        untimed = replace(options, time_candidate=False)
        try:
            results = evaluate(paths, refusing(source), [options] + [untimed] * (len(paths) - 1), on_result=arrived,
                               stop=lambda: not all(r.correct for _, r in outcome.checks))
        except BadInput as exc:  # the problem itself does not run there (an input the resize left fixed, say)
            outcome.notes.append(f"static: the problem does not run at another size: {str(exc)[:200]}")
            return outcome
    if len(results) < len(shapes) or not all(r.correct for r in results):
        return outcome
    outcome.source, outcome.dims = source, kept
    return outcome


def check_shapes(dims: list[DynamicDim], table: BucketTable) -> list[dict[str, int]]:
    """The captured shape, two more of the ranges (odd sizes), and one in a bucket of each row of the
    table that those do not run yet: every configuration the file can pick is verified."""
    shapes = _distinct([{d.name: d.captured for d in dims}] + [{d.name: _pick(d, k) for d in dims} for k in range(2)])
    seen = {table.row(tuple(buckets.bucket(s[d.name]) for d in dims)) for s in shapes}
    base = buckets.captured_key(dims)
    for key, row in table.rows.items():
        if row not in seen:
            seen.add(row)
            shapes.append({d.name: d.captured if b == c else buckets.odd_member(d, b)
                           for d, b, c in zip(dims, key, base)})
    return shapes


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
        lines += buckets.report_lines(outcome.table, outcome.dims)
    lines += [f"- {note}" for note in outcome.notes]
    return lines + [""]
