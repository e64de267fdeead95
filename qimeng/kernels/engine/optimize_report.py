"""The Markdown report of one ``qimeng optimize`` run (DIR/report.md)."""

from __future__ import annotations

from pathlib import Path

from qimeng.kernels.engine.budget import Budget
from qimeng.kernels.engine.capture import Graph
from qimeng.kernels.engine.losses import CandidateOutcome
from qimeng.kernels.engine.lowering_plan import Plan
from qimeng.kernels.engine.steps import PRECISION_TOLERANCES
from qimeng.kernels.engine.templates.unit import TemplateUnit
from qimeng.kernels.result import EvalResult
from qimeng.kernels.engine.search import Trial


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def render_report(problem: Path, graph: Graph | None, plan: Plan | None, outcomes: list[CandidateOutcome],
                  trials: list[Trial],
                  final: EvalResult | None, fallbacks: dict[str, str], capture_error: str | None,
                  on_cpu: bool, precision: str, small: bool, selection: EvalResult | None = None,
                  shapes: list[str] | None = None, budget: Budget | None = None) -> str:
    """``selection``: the winner's result in the search that chose it, when ``final`` is a re-timing;
    ``shapes``: the section on which shapes run the kernels (``optimize_dynamic.report_lines``); ``budget``:
    the run's, with its wait for the GPU."""
    lines = [f"# qimeng optimize: {problem.name}", ""]
    lines.append(f"- device: {'cpu (Triton interpreter)' if on_cpu else final.device if final else 'cuda'}; "
                 f"precision: {precision}; sizes: {'SMALL overrides' if small else 'as written'}")
    if budget is not None:
        lines.append(f"- {budget.describe()}" + (f"; {budget.reason()}" if budget.reason() else ""))
    if graph is not None and graph.mode_specific:
        mode, other = ("training", "eval") if graph.training else ("eval", "training")
        lines.append(f"- captured in {mode} mode; in {other} mode this model computes something else (batch "
                     f"statistics, dropout), so ModelNew runs Model.forward in {other} mode")
    if graph is not None and (graph.mutations or graph.increments):
        updated = [t for _, t in graph.mutations] + graph.increments
        lines.append("- buffers updated as PyTorch does: " + ", ".join(f"`{t}`" for t in updated))
    if PRECISION_TOLERANCES.get(precision):
        atol, rtol = PRECISION_TOLERANCES[precision]
        lines.append(f"- precision {precision}: GEMMs and convolutions in {precision.upper()}; candidates verified "
                     f"against the float32 reference with atol={atol:g}, rtol={rtol:g}")
    if on_cpu:
        lines.append("- timing is not meaningful for GPU code under the interpreter: candidates were verified, "
                     "the most fused verified one was kept")
    if capture_error:
        lines += ["", f"Capture failed: {capture_error}", "", "model_new.py is the reference (Model itself)."]
        return "\n".join(lines) + "\n"
    if final is None:
        lines.append("- result: no candidate beat (or verified against) the reference; model_new.py is the reference")
        lines += [f"  - #{o.index} [{o.stage}] {o.note}: {o.why}" for o in outcomes]
    else:
        eager = final.ref_ms
        comp = final.baselines_ms.get("compile")
        ours = final.candidate_ms
        lines.append(f"- result: verified ({final.status.value}, {final.trials} correctness trials, "
                     f"atol {final.atol} rtol {final.rtol})")
        if final.timing_meaningful and ours:
            lines.append(f"- eager {_ms(eager)} ms, torch.compile {_ms(comp)} ms, ours {_ms(ours)} ms: "
                         f"{eager / ours:.2f}x vs eager" + (f", {comp / ours:.2f}x vs torch.compile" if comp else ""))
            sources = [(f"{name} in the same rounds" if where == "rounds" else f"{name} from {where}")
                       + (" (ours {:.2f}-{:.2f}x of it, 95%)".format(*final.speedup_ci[name])
                          if name in final.speedup_ci else "")
                       for name, where in final.baselines_from.items()]
            if sources:
                lines.append(f"- measured by: {'; '.join(sources)} ({final.timing_trials} timed rounds)")
        if selection is not None and selection is not final and selection.speedup:
            lines.append(f"- timed again in a fresh worker on fresh inputs, torch.compile compiled again and timed in "
                         f"the same rounds as eager and ours, three-way (above); the measurement that chose "
                         f"it among the candidates said {selection.speedup:.2f}x vs eager")
    lines += [""] + (shapes or [])
    lines += ["## Captured graph (core ATen)", "", "```", str(graph) if graph else "", "```", ""]
    lines += ["## Kernels", ""]
    templates = [u for u in plan.units if isinstance(u, TemplateUnit)] if plan is not None else []
    for u in templates:
        lines.append(f"- template for `{', '.join(u.group)}` -> `{u.output}`: {u.note} "
                     f"(variants compiled: {', '.join(u.variants)})")
    if templates:
        lines.append("")
    if plan is None or not (plan.kernels or templates):
        lines.append("(none: the reference is kept)")
    if plan is not None and plan.kernels:
        lines += ["| kernel | kind | fuses | strategy | block | warps |", "| --- | --- | --- | --- | --- | --- |"]
        for u in plan.kernels:
            c = u.rendered.config
            block = f"{c.block_p}" if c.strategy == "pointwise" else f"{c.block_p}x{c.block_r}"
            lines.append(f"| {u.kernel.name} | {u.kernel.kind} | {', '.join(u.kernel.ops)} | {c.strategy} | "
                         f"{block} | {c.num_warps} |")
    lines += ["", "## Step trajectory", "", "| # | stage | steps | verdict | ms | vs eager | accepted | why not kept |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, (t, o) in enumerate(zip(trials, outcomes)):
        r = t.result
        steps = "; ".join(s.describe() for s in t.candidate.steps)
        if len(steps) > 300:
            steps = steps[:300] + " ..."
        verdict = r.status.value + ("" if r.correct else f": {r.reason[:120]}")
        sp = f"{r.speedup:.2f}x" if r.correct and r.speedup and r.timing_meaningful else "-"
        lines.append(f"| {i} | {t.candidate.stage} | {steps.replace('|', '/')} | {verdict.replace('|', '/')} | "
                     f"{_ms(r.candidate_ms) if r.timing_meaningful else '-'} | {sp} | {'yes' if t.accepted else ''} | "
                     f"{'written' if o.kept else o.why.replace('|', '/')} |")
    lines += ["", "## Kept as PyTorch calls", ""]
    if not fallbacks:
        lines.append("(none)")
    for node, why in sorted(fallbacks.items()):
        lines.append(f"- `{node}`: {why}")
    return "\n".join(lines) + "\n"
