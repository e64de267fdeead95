"""``qimeng optimize`` when the whole forward does not capture: split it at its submodules.

When ``torch.export`` fails on the whole forward (data-dependent control flow, ``.item()``, an op it
cannot trace), the problem's ``Model`` is run on its own inputs (real CPU tensors, a few draws until
every submodule has been called, at most ``RECORD_DRAWS``) with forward pre-hooks that record each
submodule's first arguments. Then, top-down, each child is captured on its recorded arguments: a child
that captures is a piece, one that does not is split further into its own children (each failure
with its cause). Each piece is optimised as a problem of its own (``split_problem``: the submodule
with its real inputs) by the engine's search (``search.run_search`` with the expert policy, every
candidate verified by the harness on the piece); pieces with the same captured graph share one
search. The pieces whose kernels verified are written into one ``model_new.py`` (``split_emit``)
whose ``ModelNew`` runs the problem's own forward with those submodules swapped in. That whole file
is then verified (and on the GPU timed) by the harness on the problem itself: the only verdict that
counts; when it fails (or is not faster on the GPU) the reference is written. The report lists every
piece (optimized / kept / capture failed) with its cause.
"""

from __future__ import annotations

import secrets
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from qimeng.core.verdict import BadInput
from qimeng.kernels.engine.budget import Budget
from qimeng.kernels.engine.capture import CaptureError, Graph, capture
from qimeng.kernels.engine.losses import candidate_outcomes
from qimeng.kernels.engine.lowering_plan import Plan
from qimeng.kernels.engine.policies.expert import ExpertPolicy, node_order
from qimeng.kernels.engine.render import render_schedule, unit_count
from qimeng.kernels.engine.search import Candidate, SearchOutcome, Trial, better, run_search
from qimeng.kernels.engine.search_harness import describe_trial, eval_options, store_trial, strict_measured
from qimeng.kernels.engine.split_emit import OptimizedPiece, emit_split
from qimeng.kernels.engine.split_problem import class_expression, piece_problem
from qimeng.kernels.engine.steps import Precision, Schedule
from qimeng.kernels.result import EvalOptions, EvalResult

RECORD_DRAWS = 4  # forwards of the problem's Model on fresh inputs, at most, to reach every submodule
_SCALARS = (int, float, bool, str, type(None))


@dataclass
class Piece:
    """One submodule in the split: ``optimized`` (its kernels are in model_new.py), ``kept`` (captured, but
    it runs its PyTorch forward: why), or ``capture failed`` (why; its children were tried instead)."""

    path: str
    status: str
    cause: str = ""
    calls: int = 0  # calls in the first recorded forward that reached it
    kernels: int = 0
    trials: int = 0

    def to_json(self) -> dict:
        return {"path": self.path, "status": self.status, "cause": self.cause, "calls": self.calls,
                "kernels": self.kernels, "trials": self.trials}


@dataclass
class Call:
    """The first call of a submodule in the recorded forwards."""

    args: list[Any]
    keywords: bool  # it was called with keyword arguments
    calls: int = 1


@dataclass
class Captured:
    path: str
    module: Any  # the torch.nn.Module
    graph: Graph
    calls: int
    found: tuple[str, str]  # (import line, class expression) for its piece problem


@dataclass
class SplitRun:
    """What the split needs of the ``optimize`` call it continues."""

    device: str
    budget: Budget  # started with the optimize call
    precision: str
    small: bool
    compare_compile: bool
    store: Any = None
    log: Callable[[str], None] = print

    @property
    def on_cpu(self) -> bool:
        return self.device == "cpu"

    @property
    def device_type(self) -> str:
        return "cpu" if self.on_cpu else "cuda"

    def spent(self) -> bool:
        return self.budget.spent()


@dataclass
class _Searched:
    best: Candidate | None
    trials: list[Trial] = field(default_factory=list)
    plan: Plan | None = None  # the best candidate's plan, as the search rendered it
    cause: str = ""  # why nothing was kept


def record_calls(model, draws: Callable[[int], list]) -> dict[int, Call]:
    """The first call of each submodule (by ``id``) in forwards of ``model`` on ``draws(seed)``, seed 0 up,
    until every submodule has been called or ``RECORD_DRAWS`` forwards ran. The forward's errors propagate."""
    import torch

    modules = [m for name, m in model.named_modules() if name]
    calls: dict[int, Call] = {}
    counts: dict[int, int] = {}

    def hook(module, args, kwargs):
        counts[id(module)] = counts.get(id(module), 0) + 1
        if id(module) not in calls:
            calls[id(module)] = Call([a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args],
                                     bool(kwargs))

    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in modules]
    try:
        for seed in range(RECORD_DRAWS):
            counts.clear()
            before = set(calls)
            with torch.no_grad():
                model(*draws(seed))
            for key in set(calls) - before:  # reached in this forward: its calls in it
                calls[key].calls = counts[key]
            if all(id(m) in calls for m in modules):
                break
    finally:
        for h in handles:
            h.remove()
    return calls


def _ineligible(call: Call, module, problem_module: str) -> str:
    """Why a submodule cannot be a piece problem ("" when it can)."""
    import torch

    if call.keywords:
        return "called with keyword arguments"
    if not any(isinstance(a, torch.Tensor) for a in call.args):
        return "called without a tensor argument"
    odd = next((type(a).__name__ for a in call.args if not isinstance(a, (torch.Tensor, *_SCALARS))), None)
    if odd:
        return f"called with a {odd} argument (a piece takes tensors and scalars)"
    if class_expression(type(module), problem_module) is None:
        return f"its class {type(module).__qualname__} cannot be named from the problem file"
    return ""


def find_pieces(model, calls: dict[int, Call], problem_module: str, lock) -> tuple[list[Captured], list[Piece]]:
    """Top-down: the largest submodules that capture on their recorded arguments, and every submodule that
    did not (not called, not eligible, capture failed: its children are tried)."""
    captured: list[Captured] = []
    others: list[Piece] = []
    seen: set[int] = set()

    def walk(module, prefix: str) -> None:
        for name, child in module.named_children():
            path = prefix + name
            if id(child) in seen:  # one module under two names: its first path only
                continue
            seen.add(id(child))
            call = calls.get(id(child))
            if call is None and any(id(m) in calls for m in child.modules()):  # a container (ModuleList)
                walk(child, path + ".")
                continue
            if call is None:
                others.append(Piece(path, "kept", f"not called in {RECORD_DRAWS} recorded forwards"))
                continue
            cause = _ineligible(call, child, problem_module)
            if not cause:
                try:
                    with lock:
                        graph = capture(child, call.args)
                    captured.append(Captured(path, child, graph, call.calls,
                                             class_expression(type(child), problem_module)))
                    continue
                except CaptureError as exc:
                    cause = str(exc)
                except Exception as exc:  # noqa: BLE001  (its own call on its recorded arguments raised)
                    lines = str(exc).strip().splitlines()
                    cause = f"{type(exc).__name__}: {lines[0] if lines else ''}"
            others.append(Piece(path, "capture failed", cause, call.calls))
            walk(child, path + ".")

    walk(model, "")
    return captured, others


def optimize_split(problem: Path, out_dir: Path, whole_error: str, run: SplitRun):
    """Optimise what captures of a problem whose whole forward does not (see the module docstring); write
    ``out_dir/model_new.py`` and ``report.md`` and return the ``OptimizeResult``."""
    from qimeng.kernels.engine.optimize import _CAPTURE_LOCK, OptimizeResult, peak_footprint, reference_source
    from qimeng.kernels.harness.problem import load_problem

    source = problem.read_text()
    prob = load_problem(problem, small=run.small)
    model = prob.build(prob.model_cls, 0, "cpu", mode=EvalOptions().mode)
    run.log(f"capture failed: {whole_error}; splitting the forward at its submodules")
    try:
        calls = record_calls(model, lambda seed: prob.inputs(seed, "cpu"))
    except Exception as exc:  # noqa: BLE001  (the problem's forward itself raised: bad input, nothing written)
        lines = str(exc).strip().splitlines()
        raise BadInput(f"{problem}: the forward raised {type(exc).__name__}: {lines[0] if lines else ''}") from exc
    captured, pieces = find_pieces(model, calls, prob.module.__name__, _CAPTURE_LOCK)
    for p in pieces:
        run.log(f"  `{p.path}`: {p.status}" + (f" ({p.cause[:160]})" if p.cause else ""))
    run.log(f"{len(captured)} submodule(s) captured: " + ", ".join(f"`{c.path}`" for c in captured))
    optimized, searches = _optimize_pieces(source, captured, pieces, model.training, run)
    trials = [t for _, s in searches for t in s.trials]
    final, written = None, ""
    if optimized:
        written = emit_split(source, optimized, run.device_type)
        final = _verify_whole(problem, written, run)
        if not (final.correct and better(final, None)):
            why = (f"{final.status.value}: {final.reason[:200]}" if not final.correct
                   else f"{final.candidate_ms:.4f} ms against the reference's {final.ref_ms:.4f} ms")
            run.log(f"the whole ModelNew with its optimised submodules: {why}; keeping the reference")
            for p in pieces:
                if p.status == "optimized":
                    p.status, p.cause = "kept", f"the whole ModelNew did not win: {why}"
            written = ""
    ok = bool(written)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model_new.py").write_text(written or reference_source(source))
    (out_dir / "report.md").write_text(report(problem, whole_error, pieces, final if ok else None, final, run))
    status = "optimized" if ok else ("reference" if captured else "capture_failed")
    timed = bool(ok and final.timing_meaningful and final.candidate_ms and final.ref_ms)
    compile_ms = final.baselines_ms.get("compile") if ok else None
    wall = run.budget.wall_s()
    run.log(f"done in {wall:.1f} s: {status} (split: {sum(p.status == 'optimized' for p in pieces)} of "
            f"{len(captured)} captured submodule(s) optimised)")
    kernels = sum(unit_count(p.plan) for p in optimized) if ok else 0
    fallbacks = {f"{p.path}: {n}": why for p in optimized for n, why in p.plan.fallbacks.items()} if ok else {}
    return OptimizeResult(out_dir, status, final.ref_ms / final.candidate_ms if timed else None,
                          compile_ms / final.candidate_ms if timed and compile_ms else None,
                          final.ref_ms if final else None, compile_ms, final.candidate_ms if ok else None,
                          kernels, wall, not run.on_cpu, len(trials) + (final is not None), fallbacks,
                          first_failure=next((f"{t.result.status.value}: {t.result.reason}" for t in trials
                                              if not t.result.correct), ""),
                          candidates=[{"piece": path, **o.to_json()} for path, s in searches
                                      for o in candidate_outcomes(s.trials, s.best)],
                          capture_error=whole_error, pieces=[p.to_json() for p in pieces],
                          peak_device_bytes=peak_footprint([t.result for t in trials] + [final]),
                          **run.budget.result_fields())


def _optimize_pieces(source: str, captured: list[Captured], pieces: list[Piece], training: bool,
                     run: SplitRun) -> tuple[list[OptimizedPiece], list[tuple[str, _Searched]]]:
    """Each captured submodule through the engine's search as a problem of its own (one search per distinct
    graph); the pieces whose kernels verified (and on the GPU won), and each search with its piece."""
    optimized: list[OptimizedPiece] = []
    searches: list[tuple[str, _Searched]] = []
    searched: dict[tuple[str, bool], _Searched] = {}
    with tempfile.TemporaryDirectory(prefix="qimeng-split-") as tmp:
        first: dict[tuple[str, bool], str] = {}  # graph -> the piece whose search it shares
        for k, c in enumerate(captured):
            key = (str(c.graph), c.graph.training)
            first.setdefault(key, c.path)
            if key not in searched:
                if run.spent():
                    searched[key] = _Searched(None, cause=f"the budget was spent ({run.budget.describe()})")
                else:
                    path = Path(tmp) / f"piece{k}.py"
                    path.write_text(piece_problem(source, c.path, *c.found, training))
                    run.log(f"[`{c.path}`] {len(c.graph.nodes)} ATen nodes, as a problem of its own")
                    searched[key] = _search_piece(path, c, run)
                    searches.append((c.path, searched[key]))
            s = searched[key]
            piece = Piece(c.path, "kept", s.cause, c.calls, trials=len(s.trials))
            if s.best is not None and s.plan is not None:
                optimized.append(OptimizedPiece(c.path, c.graph, s.plan, s.best.schedule.precision))
                piece.status, piece.cause, piece.kernels = "optimized", s.best.note, unit_count(s.plan)
            if first[key] != c.path:
                piece.cause = f"the search of `{first[key]}` (same graph): {piece.cause}"
            pieces.append(piece)
    return optimized, searches


def _search_piece(path: Path, c: Captured, run: SplitRun) -> _Searched:
    """The expert search on one piece problem, every candidate verified (and on the GPU timed) on it."""
    from qimeng.kernels.harness.evaluate import evaluate_many
    from qimeng.kernels.harness.problem import problem_hash

    graph, source = c.graph, path.read_text()
    options = eval_options(run.device, run.small, False, run.precision)
    policy = ExpertPolicy(strict_measured(graph, run.precision, run.device, run.on_cpu, run.log))
    initial = Precision(run.precision).apply(Schedule(), node_order(graph))
    run_id, piece_hash = f"optimize-split-{uuid.uuid4().hex[:8]}", problem_hash(path, run.small)

    plans: dict[str, Plan] = {}  # each rendered source's plan: the winner's is not built again

    def render(schedule: Schedule) -> tuple[str, str]:
        made = render_schedule(source, type(c.module), graph, schedule, run.device_type)
        if made.source:
            plans[made.source] = made.plan
        return made.source, made.note

    def verify(cands: list[Candidate]) -> list[EvalResult]:
        run.log(f"[`{c.path}`] verifying {len(cands)} candidate(s) on the submodule in the sandboxed harness")
        results = evaluate_many(path, [x.source for x in cands], options, store=run.store, stop=run.spent,
                                on_result=lambda i, r: run.budget.count(r))
        run.budget.skipped(len(cands) - len(results))
        for x, r in zip(cands, results):
            store_trial(run.store, run_id, piece_hash, x, r)
        return results

    def propose(schedule: Schedule, stage: str):
        return [(p.stage, p.steps, p.schedule) for p in policy.propose(graph, schedule, stage)]

    outcome: SearchOutcome = run_search(initial, list(policy.stages), propose, render, verify,
                                        lambda t: run.log(f"[`{c.path}`] " + describe_trial(t)), timed=not run.on_cpu)
    if outcome.best is not None:
        return _Searched(outcome.best, outcome.trials, plans.get(outcome.best.source))
    if not outcome.trials:
        return _Searched(None, cause="no kernels: every operator stays a PyTorch call")
    failed = next((t.result for t in outcome.trials if not t.result.correct), None)
    return _Searched(None, outcome.trials,
                     f"no candidate verified: {failed.status.value}: {failed.reason[:200]}" if failed
                     else "no candidate beat the submodule's PyTorch forward")


def _verify_whole(problem: Path, source: str, run: SplitRun) -> EvalResult:
    """The whole ModelNew on the problem itself, on fresh inputs: the verdict that counts."""
    from qimeng.kernels.harness.evaluate import evaluate

    options = replace(eval_options(run.device, run.small, run.compare_compile, run.precision),
                      seed=secrets.randbelow(2**31 - 1) + 1)
    run.log("verifying the whole ModelNew (the problem's forward, optimised submodules swapped in)")
    result = evaluate(problem, source, options, store=run.store)
    run.budget.count(result)
    run.log("  " + ("verified" if result.correct else f"rejected: {result.status.value}: {result.reason[:200]}")
            + (f", {result.speedup:.2f}x vs eager" if result.correct and result.timing_meaningful and result.speedup
               else ""))
    return result


def report(problem: Path, whole_error: str, pieces: list[Piece], final: EvalResult | None,
           checked: EvalResult | None, run: SplitRun) -> str:
    """report.md of a split run: the whole forward's capture failure, each piece, the whole file's verdict."""
    lines = [f"# qimeng optimize: {problem.name}", "",
             f"- device: {'cpu (Triton interpreter)' if run.on_cpu else run.device}; precision: {run.precision}; "
             f"sizes: {'SMALL overrides' if run.small else 'as written'}",
             f"- {run.budget.describe()}" + (f"; {run.budget.reason()}" if run.budget.reason() else ""), "",
             f"Capture failed (the whole forward): {whole_error}", "",
             "The forward was split at its submodules: the largest that capture on the arguments they get in the "
             "problem's forward were optimised as problems of their own; the rest stays the problem's PyTorch.", ""]
    if final is not None:
        lines.append(f"- result: model_new.py runs the problem's forward with the optimised submodules swapped in, "
                     f"verified on the whole problem ({final.status.value}, {final.trials} correctness trials)")
        if final.timing_meaningful and final.candidate_ms and final.ref_ms:
            comp = final.baselines_ms.get("compile")
            lines.append(f"- eager {final.ref_ms:.4f} ms, ours {final.candidate_ms:.4f} ms: "
                         f"{final.ref_ms / final.candidate_ms:.2f}x vs eager"
                         + (f", {comp / final.candidate_ms:.2f}x vs torch.compile" if comp else ""))
    elif checked is not None:
        lines.append("- result: model_new.py is the reference; the whole ModelNew with the optimised submodules: "
                     + (f"{checked.status.value}: {checked.reason[:300]}" if not checked.correct
                        else f"not faster ({checked.candidate_ms} ms against {checked.ref_ms} ms)"))
    else:
        lines.append("- result: model_new.py is the reference (no submodule was optimised)")
    lines += ["", "## Submodules", "", "| submodule | status | calls | kernels | trials | cause |",
              "| --- | --- | --- | --- | --- | --- |"]
    for p in pieces:
        lines.append(f"| `{p.path}` | {p.status} | {p.calls} | {p.kernels} | {p.trials} | "
                     f"{p.cause.replace('|', '/')[:300]} |")
    return "\n".join(lines) + "\n"
