"""``qimeng optimize``: capture -> expert steps -> verified, timed candidates -> model_new.py + report.md.

The orchestration: load the problem, capture its forward as core ATen, let the expert policy propose
macro steps stage by stage (``search``), verify and time every candidate in the sandboxed harness
(``evaluate_many``), tune the block configurations of the best candidate's main kernels (``tuning``),
and write the best verified candidate (the unfused reference when nothing beats it) with a report.
Everything tried goes into the store.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from qimeng.core.verdict import BadInput
from qimeng.kernels.engine.budget import Budget
from qimeng.kernels.engine.capture import CaptureError, Graph, capture
from qimeng.kernels.engine.dynamic_dims import parse_spec
from qimeng.kernels.engine.llm_search import LLMOptimize, llm_regions, llm_rounds, report_lines
from qimeng.kernels.engine.losses import CandidateOutcome, candidate_outcomes
from qimeng.kernels.engine.lowering_plan import Plan
from qimeng.kernels.engine.render import Regions, render_schedule
from qimeng.kernels.engine.optimize_dynamic import DynamicOutcome, Tuned, make_dynamic
from qimeng.kernels.engine.optimize_dynamic import report_lines as shape_report_lines
from qimeng.kernels.engine.policies.expert import ExpertPolicy, node_order
from qimeng.kernels.result import EvalOptions, EvalResult
from qimeng.kernels.engine.search import Candidate, SearchOutcome, Trial, better, run_search, select, speed
from qimeng.kernels.engine.search_harness import describe_trial, eval_options, store_trial, strict_measured
from qimeng.kernels.engine.steps import PRECISION_TOLERANCES, Precision, Schedule
from qimeng.kernels.engine.templates.plan import TemplateUnit
from qimeng.kernels.engine import tuning
from qimeng.kernels.harness.compile_cache import BaselineWarmer

DEFAULT_BUDGET_S = 60.0
GENERIC_SLOWER = 1.05  # a shape-generic file this much slower than the static one at the captured shape is not kept
GENERIC_S = 30.0  # the shape-generic step's captures and renders may take this long past a spent budget
# torch.export is not thread-safe (it patches nn.Module.__call__ while tracing): every capture of this process
# (batch optimize's problems side by side, and the dynamic step's captures at other sizes) runs one at a
# time; verification and timing run in sandboxed workers, in parallel
_CAPTURE_LOCK = threading.RLock()
GEMM_OPS = ("mm", "addmm", "bmm", "baddbmm", "convolution", "scaled_dot_product_attention",
            "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention")


def io_bytes(graph: Graph) -> int:
    """Bytes of the graph's inputs (parameters included) and outputs, each counted once."""
    metas = [i.meta for i in graph.inputs]
    for o in graph.outputs:
        if hasattr(o, "name"):
            metas.append(graph.meta(o.name))
    return sum(m.nbytes for m in metas)


@dataclass
class OptimizeResult:
    out_dir: Path
    status: str  # "optimized", "reference" (nothing beat eager / nothing verified), "capture_failed"
    speedup: float | None  # vs eager, of the written candidate (None when not timed)
    speedup_compile: float | None
    eager_ms: float | None
    compile_ms: float | None
    ours_ms: float | None
    kernels: int
    wall_s: float
    timing_meaningful: bool
    trials: int
    fallbacks: dict[str, str] = field(default_factory=dict)
    io_bytes: int = 0  # user inputs, parameters and outputs, once each (the roofline's traffic)
    memory_bound: bool = False  # no GEMM/convolution in the graph
    first_failure: str = ""  # status and reason of the first candidate that did not verify ("" if none)
    selection_speedup: float | None = None  # vs eager, in the measurement that chose the winner (leans optimistic)
    candidates: list[dict] = field(default_factory=list)  # CandidateOutcome.to_json of each trial: why it lost
    capture_error: str = ""  # why capture failed (status "capture_failed"), else ""
    dynamic: tuple[str, ...] = ()  # the dynamic dimensions model_new.py takes at run time, with their ranges
    pieces: list[dict] = field(default_factory=list)  # the submodules of a split forward (split.Piece.to_json)
    lock_wait_s: float = 0.0  # seconds its evaluations waited for the GPU's lock (other runs held it)
    budget: str = ""  # the budget and that wait, as report.md says it (budget.Budget.describe)
    reason: str = ""  # why candidates were left out by the budget, and whether waiting took most of it ("" if none)
    peak_device_bytes: int | None = None  # the largest device footprint of its evaluations (None on the CPU)


def peak_footprint(results: list[EvalResult | None]) -> int | None:
    """The largest device footprint among ``results`` (EvalResult.device_footprint_bytes); None if none has one."""
    sizes = [b for r in results if r is not None and (b := r.device_footprint_bytes) is not None]
    return max(sizes) if sizes else None


def reference_source(problem_source: str) -> str:
    """The unfused reference as a candidate: ModelNew is Model (every op a PyTorch call)."""
    return problem_source.rstrip() + "\n\n\nclass ModelNew(Model):\n    \"\"\"The reference itself.\"\"\"\n"


def _load(problem: Path, small: bool):
    from qimeng.kernels.harness.problem import load_problem

    prob = load_problem(problem, small=small)
    # the mode the harness verifies in (EvalOptions.mode): as Model(*get_init_inputs()) builds it, training
    model = prob.build(prob.model_cls, 0, "cpu", mode=EvalOptions().mode)
    inputs = prob.inputs(0, "cpu")
    return prob, model, inputs


def capture_problem(problem: Path, small: bool, resize: Callable[[list], list] | None = None,
                    mode_specific: bool | None = None) -> tuple[object, Graph]:
    """The problem and its captured graph (on the meta device when it can: full sizes cost nothing);
    ``resize`` changes the inputs first (other sizes of dynamic dimensions), ``mode_specific`` is
    ``Graph.mode_specific`` when known (``capture``: the module captured already at other sizes)."""
    with _CAPTURE_LOCK:
        return _capture_problem(problem, small, resize, mode_specific)


def _capture_problem(problem: Path, small: bool, resize: Callable[[list], list] | None,
                     mode_specific: bool | None) -> tuple[object, Graph]:
    import torch

    resize = resize or (lambda xs: xs)
    prob, model, inputs = _load(problem, small)
    try:
        meta_inputs = resize([x.to("meta") if isinstance(x, torch.Tensor) else x for x in inputs])
        return prob, capture(model.to("meta"), meta_inputs, mode_specific)
    except CaptureError:
        raise
    except Exception:  # some operators have no meta kernel: capture on real CPU tensors instead
        prob, model, inputs = _load(problem, small)
    try:
        return prob, capture(model, resize(inputs), mode_specific)
    except CaptureError:
        raise
    except Exception as exc:  # capture's example call is the forward itself: it raised on real inputs
        lines = str(exc).strip().splitlines()
        raise BadInput(f"{problem}: the forward raised {type(exc).__name__}: {lines[0] if lines else ''}") from exc


def optimize(problem: Path, out_dir: Path, *, device: str = "cuda", budget_s: float = DEFAULT_BUDGET_S,
             precision: str = "strict", small: bool | None = None, store=None, compare_compile: bool = True,
             llm: LLMOptimize | None = None, dynamic: tuple[str, ...] = (), static: bool = False,
             sharing: int = 1, log: Callable[[str], None] = print) -> OptimizeResult:
    """Optimise one problem file and write ``out_dir/model_new.py`` and ``out_dir/report.md``. With ``llm``
    the model's proposals join the expert's (``llm_search``); without it nothing talks to a model.
    ``dynamic``: ``NAME=MIN:MAX`` ranges of dynamic dimensions (``dynamic_dims``); ``static``: none by default.
    ``sharing``: optimize runs sharing this run's GPU, itself included (``budget``: ``budget_s`` caps the run's
    own work, its wait for the GPU is bounded apart)."""
    return _optimize(Path(problem), Path(out_dir), device, Budget(budget_s, sharing), precision, small, store,
                     compare_compile, llm, tuple(dynamic), static, log)


def _optimize(problem: Path, out_dir: Path, device: str, budget: Budget, precision: str, small: bool | None,
              store, compare_compile: bool, llm: LLMOptimize | None, dynamic: tuple[str, ...], static: bool,
              log: Callable[[str], None]) -> OptimizeResult:
    if precision not in PRECISION_TOLERANCES:
        raise BadInput(f"unknown precision {precision!r}: use one of {', '.join(PRECISION_TOLERANCES)}")
    for spec in dynamic:
        parse_spec(spec)
    on_cpu = device == "cpu"
    small = on_cpu if small is None else small
    source = problem.read_text()
    run = f"optimize-{uuid.uuid4().hex[:8]}"
    options = eval_options(device, small, compare_compile, precision)
    # torch.compile's own compile (minutes on a deep network) runs beside the capture and the rendering; the
    # evaluations' judges then read it from the shared compile cache (harness/compile_cache.py)
    with contextlib.closing(BaselineWarmer(problem, options)) as warmer:
        try:
            prob, graph = capture_problem(problem, small)
        except CaptureError as exc:  # optimise what captures: the submodules, the rest stays PyTorch
            from qimeng.kernels.engine.split import SplitRun, optimize_split

            warmer.close()  # the pieces are other problems
            split_run = SplitRun(device, budget, precision, small, compare_compile, store, log)
            return optimize_split(problem, out_dir, str(exc), split_run)
        log(f"captured {len(graph.nodes)} ATen nodes from {problem.name}")
        from qimeng.kernels.harness.evaluate import evaluate_many

        policy = ExpertPolicy(strict_measured(graph, precision, device, on_cpu, log), cuda_graphs=not on_cpu)
        order = node_order(graph)
        initial = Precision(precision).apply(Schedule(), order)
        plans: dict[str, Plan] = {}

        kept_regions: Regions = {}  # LLM-coded regions of the best candidate (tuning keeps them)

        def render(schedule: Schedule, regions: Regions | None = None) -> tuple[str, str]:
            made = render_schedule(source, prob.model_cls, graph, schedule, "cpu" if on_cpu else "cuda",
                                   kept_regions if regions is None else regions)
            if made.source:
                plans[made.source] = made.plan
            return made.source, made.note

        def verify(cands: list[Candidate]) -> list[EvalResult]:
            if warmer.compiling:  # the first evaluation's judge comes after the compile ahead
                waiting = time.monotonic()
                log(warmer.wait())
                budget.waited_for_baselines(time.monotonic() - waiting)
            t0 = time.monotonic()
            log(f"verifying {len(cands)} candidate(s) in the sandboxed harness ({options.device})")

            def arrived(i: int, r: EvalResult) -> None:
                budget.count(r)
                verdict = "verified" if r.correct else f"rejected ({r.status.value})"
                phases = ", ".join(f"{k} {v:.1f}" for k, v in r.phases_s.items() if v >= 0.05)
                log(f"  {i + 1}/{len(cands)} [{cands[i].stage}] {verdict} at {time.monotonic() - t0:.1f} s"
                    + (f" ({phases} s)" if phases else ""))

            results = evaluate_many(problem, [c.source for c in cands], options, store=store, on_result=arrived,
                                    stop=budget.spent)
            if len(results) < len(cands):
                budget.skipped(len(cands) - len(results))
                log(f"the budget is spent ({budget.describe()}): {len(cands) - len(results)} candidate(s) not tried")
            for c, r in zip(cands, results):
                store_trial(store, run, prob.hash, c, r)
            return results

        def propose(schedule: Schedule, stage: str):
            return [(p.stage, p.steps, p.schedule) for p in policy.propose(graph, schedule, stage)]

        def on_trial(trial: Trial) -> None:
            log(describe_trial(trial))

        search_started = budget.own_s()
        outcome = run_search(initial, list(policy.stages), propose, render, verify, on_trial,
                             timed=not on_cpu)
        llm_lines: list[str] = []
        if llm is not None:
            record = llm_rounds(graph, initial, outcome, render, verify, plans, llm, _device_name(device), on_trial,
                                log)
            kept_regions.update(llm_regions(graph, initial, outcome, render, verify, plans, llm, options, record,
                                            on_trial, log))
            llm_lines = report_lines(record, llm.client)
        per_candidate_s = max(1e-3, budget.own_s() - search_started) / max(1, len(outcome.trials))
        if outcome.best is not None and not on_cpu:
            affordable = int(budget.left_s() / per_candidate_s)
            if affordable > 0:
                _tune(graph, outcome, render, verify, plans, store, device, log, affordable, budget)
            else:
                log(f"tuning skipped: the budget is spent ({budget.describe()})")
        selection = outcome.best_result
        if outcome.best is not None and not on_cpu:
            _retime(problem, outcome, options, store, log, budget)
        best_source = outcome.best.source if outcome.best is not None else reference_source(source)
        best_plan = plans.get(best_source) if outcome.best is not None else None
        final = outcome.best_result
        shapes = None
        if outcome.best is not None and best_plan is not None:
            shapes = _shape_generic(problem, source, prob.model_cls, graph, outcome, best_plan, small, on_cpu, options,
                                    dynamic, static, log, kept_regions, _stored_tuning(store, device, on_cpu), budget)
            if shapes.source is not None and (slower := _generic_slower(shapes.captured_result, final)):
                shapes.notes.append(f"static: {slower}")
                log(f"shape-generic file not kept: {slower}")
                shapes.source, shapes.dims = None, []
            if shapes.source is not None:
                best_source = shapes.source
                plans[best_source] = best_plan
                checked = shapes.captured_result
                if checked is not None and checked.timing_meaningful and final is not None:
                    # the generic file's own figure (a fresh worker and seed); torch.compile's is the run's own
                    checked.baselines_ms = {**final.baselines_ms, **checked.baselines_ms}
                    final = checked
        outcomes = candidate_outcomes(outcome.trials, outcome.best)
        out_dir.mkdir(parents=True, exist_ok=True)  # only now: bad input found on the way leaves no directory
        (out_dir / "model_new.py").write_text(best_source)
        fallbacks = best_plan.fallbacks if best_plan else {}
        _write_report(out_dir, problem, graph, best_plan, outcomes, outcome.trials, final, fallbacks, None, on_cpu,
                      precision, small, selection, llm_lines,
                      shape_report_lines(shapes, graph.user_args) if shapes else None, budget)
        eager = final.ref_ms if final else (outcome.trials[0].result.ref_ms if outcome.trials else None)
        compile_ms = final.baselines_ms.get("compile") if final else None  # the re-time's own, when it ran
        for t in outcome.trials:
            compile_ms = compile_ms or t.result.baselines_ms.get("compile")
        ours = speed(final) if final else eager
        status = "optimized" if outcome.best is not None else "reference"
        wall = budget.wall_s()
        log(f"done in {wall:.1f} s: {status}" + (f", {eager / ours:.2f}x vs eager" if eager and ours else "")
            + (" (timed again in a fresh worker on fresh inputs)" if final is not selection else "")
            + f"; {budget.describe()}" + (f"; {budget.reason()}" if budget.reason() else ""))
        return OptimizeResult(out_dir, status, (eager / ours) if eager and ours else None,
                              (compile_ms / ours) if compile_ms and ours else None, eager, compile_ms, ours,
                              len(best_plan.kernels) + sum(isinstance(u, TemplateUnit) for u in best_plan.units)
                              if best_plan else 0, wall, not on_cpu, len(outcome.trials),
                              fallbacks, io_bytes(graph), _memory_bound(graph),
                              next((f"{t.result.status.value}: {t.result.reason}" for t in outcome.trials
                                    if not t.result.correct), ""),
                              selection.speedup if selection is not None and final is not selection else None,
                              [o.to_json() for o in outcomes],
                              dynamic=tuple(d.describe() for d in shapes.dims) if shapes else (),
                              peak_device_bytes=peak_footprint([t.result for t in outcome.trials] + [final]),
                              **{**budget.result_fields(), **_nothing_proposed(graph, outcome, budget)})


def _memory_bound(graph: Graph) -> bool:
    """No GEMM or convolution among the graph's operators."""
    return not any(n.target.split(".")[1] in GEMM_OPS for n in graph.nodes if n.target.startswith("aten."))


def _nothing_proposed(graph: Graph, outcome: SearchOutcome, budget: Budget) -> dict[str, str]:
    """The reason of a run whose policy proposed no candidate at all (``{}`` otherwise): which operators the
    graph holds, none of which the engine lowers (e.g. ``aten.gru``: cuDNN's whole recurrent stack)."""
    if outcome.trials or budget.not_tried:
        return {}
    ops = sorted({n.target for n in graph.nodes if n.target.startswith("aten.")})
    return {"reason": f"no candidate: nothing in the captured graph is lowered by the engine ({', '.join(ops)[:160]})"}


def _shape_generic(problem: Path, source: str, model_cls: type, graph: Graph, outcome: SearchOutcome, plan: Plan,
                   small: bool, on_cpu: bool, options: EvalOptions, dynamic: tuple[str, ...], static: bool,
                   log: Callable[[str], None], regions: Regions, tuned: Tuned | None,
                   budget: Budget) -> DynamicOutcome:
    """The winner with its dynamic dimensions as runtime sizes, verified at three shapes (``optimize_dynamic``);
    the checks are not stored (their problems are resized copies) and time against eager only."""
    from qimeng.kernels.harness.evaluate import evaluate_problems

    def check(problems: list[Path], src: str, opts: list[EvalOptions], *, on_result: Callable[[int, EvalResult], None],
              stop: Callable[[], bool]) -> list[EvalResult]:
        def arrived(index: int, result: EvalResult) -> None:
            budget.count(result)  # its wait for the GPU is reported with the run's
            on_result(index, result)

        return evaluate_problems(problems, src, opts, on_result=arrived, stop=stop)

    checks = replace(options, seed=secrets.randbelow(2**31 - 1) + 1, baselines=("eager",))
    # the captures at other sizes: seconds each on a deep network, a dozen of them; at least GENERIC_S, more
    # while the budget has time left
    deadline = time.monotonic() + max(GENERIC_S, budget.left_s())
    return make_dynamic(problem, source, model_cls, plan, outcome.best.schedule, graph, small=small,
                        device_type="cpu" if on_cpu else "cuda", options=checks, specs=dynamic, static=static,
                        evaluate=check, log=log, regions=regions, tuned=tuned,
                        stop=lambda: time.monotonic() > deadline)


def _generic_slower(generic: EvalResult | None, static: EvalResult | None) -> str:
    """Why the shape-generic file is too slow to replace the static one at the captured shape ("" if it is not):
    its speed-up over eager, in rounds of its own, below the static file's by more than GENERIC_SLOWER."""
    if generic is None or static is None or not (generic.timing_meaningful and generic.speedup and static.speedup):
        return ""
    if generic.speedup * GENERIC_SLOWER >= static.speedup:
        return ""
    return (f"at the captured shape it measured {generic.speedup:.2f}x over eager against the static file's "
            f"{static.speedup:.2f}x")


def _stored_tuning(store, device: str, on_cpu: bool) -> Tuned | None:
    """A kernel's tuned config on this device from the store (the buckets' configurations); none on the CPU."""
    if store is None or on_cpu:
        return None
    name = _device_name(device)

    def tuned(kernel):
        hit = store.tuning(kernel.structural_hash(), name)
        return tuning.config_from_json(hit["config"]) if hit is not None else None

    return tuned


def _tune(graph: Graph, outcome: SearchOutcome, render, verify, plans, store, device: str, log,
          max_candidates: int, budget: Budget) -> None:
    """Measured block configurations for the best candidate's GEMM template units and biggest kernels, in
    one harness job of at most ``max_candidates`` (what the budget affords); cached per (kernel hash,
    device) in the store so that a second run only re-verifies."""
    best = outcome.best
    plan = plans.get(best.source)
    if plan is None:
        return
    device_name = _device_name(device)
    order = node_order(graph)
    base = best.schedule
    cands: list[Candidate] = []
    owners: list[tuple[str, str]] = []  # (group head or template node, kernel hash) of each candidate
    for node, key, steps in tuning.template_trials(graph, plan, base, "cuda"):  # the GEMMs first: most of the time
        cached = store.tuning(key, device_name) if store is not None else None
        for step in [tuning.template_step_from_json(node, cached["config"])] if cached is not None else steps:
            sched = step.apply(base, order)
            src, note = render(sched)
            cands.append(Candidate("tune", [step], sched, src, note + (" (cached config)" if cached else "")))
            owners.append((node, key))
    for unit in sorted(plan.kernels, key=lambda u: -u.kernel.bytes_moved())[: tuning.MAX_KERNELS]:
        group = next((g for g in base.groups if set(g) <= set(unit.group)), None)
        if group is None:
            continue
        khash = unit.kernel.structural_hash()
        cached = store.tuning(khash, device_name) if store is not None else None
        configs = ([tuning.config_from_json(cached["config"])] if cached is not None
                   else tuning.variants(unit.kernel, base.config(group))[1:])
        for cfg in configs:
            step = tuning.as_step(group[0], cfg)
            sched = step.apply(base, order)
            src, note = render(sched)
            cands.append(Candidate("tune", [step], sched, src, note + (" (cached config)" if cached else "")))
            owners.append((group[0], khash))
    if not cands:
        return
    if len(cands) > max_candidates:
        log(f"tuning {max_candidates} of {len(cands)} configurations: the rest would pass the budget")
        budget.skipped(len(cands) - max_candidates)
        cands, owners = cands[:max_candidates], owners[:max_candidates]
    results = verify(cands)
    winners: dict[str, Candidate] = {}
    for cand, res, (head, khash) in zip(cands, results, owners):
        if res.correct and res.candidate_ms is not None and store is not None:
            store.put_tuning(khash, device_name, tuning.config_json(cand.steps[0]), res.candidate_ms)
        if better(res, outcome.best_result) and (head not in winners or better(res, _result_of(outcome, winners[head]))):
            winners[head] = cand
    select(outcome, cands, results)
    for trial in outcome.trials[len(outcome.trials) - len(results):]:
        log(describe_trial(trial))
    if len(winners) > 1:  # combine the per-kernel winners into one candidate
        sched, steps = base, []
        for cand in winners.values():
            sched = cand.steps[0].apply(sched, order)
            steps.append(cand.steps[0])
        src, note = render(sched)
        combined = Candidate("tune", steps, sched, src, note)
        checked = verify([combined])
        select(outcome, [combined], checked)
        if checked:
            log(describe_trial(outcome.trials[-1]))


def _retime(problem: Path, outcome: SearchOutcome, options: EvalOptions, store, log,
            budget: Budget | None = None) -> None:
    """Verify and time the winner again in a fresh judge and worker on fresh inputs; eager, torch.compile
    (when asked for: compiled again, not read from the store's cache) and the winner are timed in the
    same rounds, three-way, in an order that rotates. That result is the figure reported, free of the
    selection among candidates. A winner that fails this check is dropped for the reference."""
    from qimeng.kernels.harness.evaluate import evaluate

    seed = secrets.randbelow(2**31 - 1) + 1
    result = evaluate(problem, outcome.best.source, replace(options, seed=seed, interleave_baselines=True),
                      store=None)  # no cached baseline
    if budget is not None:
        budget.count(result)
    if not result.correct:
        log(f"the winner failed on fresh inputs (seed {seed}): {result.status.value}: {result.reason[:160]}; "
            "keeping the reference")
        outcome.best, outcome.best_result = None, None
        return
    if result.candidate_ms and result.speedup:
        comp = result.baselines_ms.get("compile")
        low, high = result.speedup_ci.get("eager", (result.speedup, result.speedup))
        log(f"timed again on fresh inputs (seed {seed}): {result.candidate_ms:.4f} ms, {result.speedup:.2f}x vs eager "
            f"(95% interval {low:.2f}-{high:.2f})"
            + (f", {comp / result.candidate_ms:.2f}x vs torch.compile ({comp:.4f} ms)" if comp else "")
            + f", {result.timing_trials} rounds, each timing eager, {'torch.compile, ' if comp else ''}the winner")
    outcome.best_result = result


def _result_of(outcome: SearchOutcome, cand: Candidate) -> EvalResult | None:
    return next((t.result for t in outcome.trials if t.candidate is cand), None)


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return device


def _write_report(out_dir: Path, problem: Path, graph: Graph | None, plan: Plan | None,
                  outcomes: list[CandidateOutcome], trials: list[Trial], final: EvalResult | None,
                  fallbacks: dict[str, str], capture_error: str | None, on_cpu: bool, precision: str, small: bool,
                  selection: EvalResult | None = None, extra: list[str] | None = None,
                  shapes: list[str] | None = None, budget: Budget | None = None) -> None:
    from qimeng.kernels.engine.optimize_report import render_report

    text = render_report(problem, graph, plan, outcomes, trials, final, fallbacks, capture_error, on_cpu, precision,
                         small, selection, shapes, budget)
    (out_dir / "report.md").write_text(text + ("\n" + "\n".join(extra) + "\n" if extra else ""))
