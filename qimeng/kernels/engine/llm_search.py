"""The LLM rounds of ``qimeng optimize`` (macro thinking by a model, mixed with the expert's search).

After the expert's candidates are verified, the model is asked, round by round, for steps on top of the
best verified candidate (the reference when none verified). It is given the captured graph, that plan
with each kernel's measured time and roofline bound, and the steps' JSON Schema. Each proposal is
validated (``policies.llm``), rendered, verified and timed in the sandboxed harness before the next one
is asked for, and kept only when it beats the incumbent: the best verified candidate stays the answer,
the reference included. With no model configured none of this runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from qimeng.core.verdict import BadInput
from qimeng.kernels.engine.capture import Graph
from qimeng.kernels.engine.lowering_plan import Plan, build_plan
from qimeng.kernels.engine.micro_coder import (DEFAULT_DEBUG_ROUNDS, MAX_REGIONS, RegionResult, codable_nodes,
                                               code_region, coder_regions, region_of)
from qimeng.kernels.engine.policies import llm as policy
from qimeng.kernels.engine.policies.expert import node_order
from qimeng.kernels.engine.search import Candidate, SearchOutcome, Trial, select
from qimeng.kernels.engine.steps import Schedule
from qimeng.kernels.harness.roofline import ceilings_for
from qimeng.kernels.result import EvalOptions, EvalResult
from qimeng.llm.client import LLMClient
from qimeng.llm.insights import InsightStore, distill, lessons_text

DEFAULT_ROUNDS = 2


@dataclass
class LLMOptimize:
    """The model side of one optimize run; ``optimize(llm=None)`` (no model configured) runs the expert alone."""

    client: LLMClient
    insights: InsightStore | None = None  # None: --no-insights or --no-store
    rounds: int = DEFAULT_ROUNDS  # proposals asked for, each verified before the next
    debug_rounds: int = DEFAULT_DEBUG_ROUNDS  # the micro coder's fixes after a failed region (K)
    max_regions: int = MAX_REGIONS  # regions the micro coder is given per run


@dataclass
class ProposalRecord:
    """One round: what the model proposed, and what became of it."""

    round: int
    steps: list[str]  # described steps ([] when the proposal was rejected)
    rejections: list[str]
    outcome: str  # "verified (accepted)", "rejected: <status>: <reason>", "duplicate", ...


@dataclass
class LLMRecord:
    """What the report says about the model's part in the run."""

    proposals: list[ProposalRecord] = field(default_factory=list)
    lessons_used: list[str] = field(default_factory=list)
    lessons_learnt: list[str] = field(default_factory=list)
    stopped: str = ""  # why the rounds ended early (a failed request), "" otherwise
    regions: list[RegionResult] = field(default_factory=list)  # the micro coder's, one per region
    requested: list[str] = field(default_factory=list)  # nodes the model's code_region steps asked for


def plan_measurements(plan: Plan | None, result: EvalResult | None, reference_ms: float | None,
                      device_name: str) -> str:
    """The current plan as the model sees it: the program's measured time, and per kernel its nodes, its
    bytes, its roofline bound on ``device_name`` and its share of the time by its bytes (the harness times
    the whole program, not each kernel: the share is an estimate, and says so)."""
    lines = []
    if result is None:
        lines.append("The current plan is the reference: every node a PyTorch call"
                     + (f", {reference_ms:.4f} ms measured." if reference_ms else "."))
    elif result.timing_meaningful and result.candidate_ms:
        lines.append(f"The current plan runs in {result.candidate_ms:.4f} ms measured (the eager reference "
                     f"{result.ref_ms:.4f} ms)." if result.ref_ms else
                     f"The current plan runs in {result.candidate_ms:.4f} ms measured.")
    else:
        lines.append("The current plan is verified but not timed (Triton's interpreter on a CPU: no timings).")
    ceilings = ceilings_for(device_name)
    units = plan.kernels if plan is not None else []
    total = sum(u.kernel.bytes_moved() for u in units) or 1
    timed = result.candidate_ms if result is not None and result.timing_meaningful else None
    for unit in units:
        nbytes = unit.kernel.bytes_moved()
        bound = (f"roofline bound {nbytes / ceilings.bandwidth * 1e3:.4f} ms at {ceilings.bandwidth / 1e12:g} TB/s"
                 if ceilings else f"no roofline known for {device_name}")
        measured = (f"about {timed * nbytes / total:.4f} ms of the measured time by its share of the bytes"
                    if timed else "not timed")
        lines.append(f"- kernel {unit.kernel.name} (nodes {', '.join(unit.group)}; ops {', '.join(unit.kernel.ops)}): "
                     f"{nbytes} bytes moved, {bound}, {measured}")
    for node, why in sorted((plan.fallbacks if plan is not None else {}).items()):
        lines.append(f"- {node}: kept as a PyTorch call ({why})")
    return "\n".join(lines)


def llm_rounds(graph: Graph, initial: Schedule, outcome: SearchOutcome, render: Callable[[Schedule], tuple[str, str]],
               verify: Callable[[list[Candidate]], list[EvalResult]], plans: dict[str, Plan], llm: LLMOptimize,
               device_name: str, on_trial: Callable[[Trial], None], log: Callable[[str], None]) -> LLMRecord:
    """Ask, validate, render, verify, keep the best: ``llm.rounds`` times. A fatal client error (server
    unreachable, key refused, replay miss) raises BadInput; any other failed request ends the rounds."""
    record = LLMRecord()
    client, order = llm.client, node_order(graph)
    nodes = [n.name for n in graph.nodes]
    target = "cpu" if device_name == "cpu" else "cuda"
    if llm.insights is not None:
        record.lessons_used = llm.insights.lessons(policy.TASK_KIND, target, client.settings.model)
    reference_ms = next((t.result.ref_ms for t in outcome.trials if t.result.ref_ms), None)
    tried = {t.candidate.source for t in outcome.trials}
    history: list[str] = []
    for round_ in range(llm.rounds):
        schedule = outcome.best.schedule if outcome.best is not None else initial
        plan = plans.get(outcome.best.source) if outcome.best is not None else None
        measured = plan_measurements(plan, outcome.best_result, reference_ms, device_name)
        if history:
            measured += "\n\nEarlier proposals in this run:\n" + "\n".join(history)
        codable = codable_nodes(plan or build_plan(graph, schedule))
        log(f"[llm] round {round_ + 1}/{llm.rounds}: asking {client.settings.model} for steps")
        proposal = policy.propose(client, str(graph), nodes, order, schedule, measured,
                                  lessons_text(record.lessons_used), seed=client.settings.seed + round_,
                                  codable=codable)
        if proposal.error is not None:
            if proposal.error.fatal:
                raise BadInput(proposal.error.message)
            record.stopped = f"{proposal.error.kind}: {proposal.error.message}"
            log(f"[llm] request failed ({record.stopped}); no more rounds")
            break
        described = [s.describe() for s in proposal.steps] + [f"code_region({n})" for n in proposal.regions]
        record.requested += [n for n in proposal.regions if n not in record.requested]
        if proposal.accepted and not proposal.steps:
            asked = "asks the micro coder for " + ", ".join(proposal.regions)
            record.proposals.append(ProposalRecord(round_, described, proposal.rejections, asked))
            history.append(f"- round {round_ + 1}: {'; '.join(described)} -> noted: the micro coder runs after "
                           "the rounds")
            continue
        if not proposal.accepted:
            record.proposals.append(ProposalRecord(round_, [], proposal.rejections, "rejected twice: no steps"))
            log(f"[llm] proposal rejected: {proposal.rejections[-1][:160]}")
            history.append(f"- round {round_ + 1}: invalid ({proposal.rejections[-1][:200]})")
            continue
        source, note = render(proposal.schedule)
        if not source or source in tried:
            why = "no kernels" if not source else "the same program as a candidate already tried"
            record.proposals.append(ProposalRecord(round_, described, proposal.rejections, why))
            history.append(f"- round {round_ + 1}: {'; '.join(described)} -> {why}")
            continue
        tried.add(source)
        candidate = Candidate(policy.STAGE, proposal.steps, proposal.schedule, source, note)
        select(outcome, [candidate], verify([candidate]))
        trial = outcome.trials[-1]
        on_trial(trial)
        verdict = _verdict(trial)
        record.proposals.append(ProposalRecord(round_, described, proposal.rejections, verdict))
        history.append(f"- round {round_ + 1}: {'; '.join(described)} -> {verdict}")
        if trial.result.correct and proposal.rejections and llm.insights is not None and not proposal.cached:
            lesson = distill(client, policy.TASK, proposal.rejections[-1], proposal.answer_text,
                             seed=client.settings.seed + round_)
            if isinstance(lesson, str) and lesson:
                llm.insights.add(policy.TASK_KIND, target, client.settings.model, lesson)
                record.lessons_learnt.append(lesson)
    return record


def llm_regions(graph: Graph, initial: Schedule, outcome: SearchOutcome,
                render: Callable[[Schedule, dict[str, tuple[str, str]] | None], tuple[str, str]],
                verify: Callable[[list[Candidate]], list[EvalResult]], plans: dict[str, Plan], llm: LLMOptimize,
                options: EvalOptions, record: LLMRecord, on_trial: Callable[[Trial], None],
                log: Callable[[str], None]) -> dict[str, tuple[str, str]]:
    """The micro coder on the best candidate's PyTorch-call regions: each region's code verified as a
    sub-problem, then the candidate with every verified region verified as a whole (stage ``coder``).
    Returns the regions (node -> (code, function)) when that candidate became the best, else {}."""
    schedule = outcome.best.schedule if outcome.best is not None else initial
    plan = plans.get(outcome.best.source) if outcome.best is not None else None
    plan = plan or build_plan(graph, schedule)
    calls = set(codable_nodes(plan))
    for name in record.requested:
        if name not in calls:
            log(f"[coder] {name} is no longer a PyTorch call in the best candidate: not coded")
    wanted = [graph.node(n) for n in record.requested if n in calls]
    wanted += [n for n in coder_regions(plan) if n.name not in record.requested]
    regions = [r for r in (region_of(graph, n) for n in wanted) if r is not None][:llm.max_regions]
    target = "cpu" if options.device == "cpu" else "cuda"
    checking = replace(options, timing_trials=0, warmup=0, baselines=("eager",))  # a region is checked, not timed
    for region in regions:
        log(f"[coder] asking {llm.client.settings.model} for a Triton kernel of {region.node.name} "
            f"({region.node.target}), verified as a sub-problem")
        result = code_region(llm.client, graph, region, checking, debug_rounds=llm.debug_rounds,
                             insights=llm.insights, target=target, seed=llm.client.settings.seed)
        record.regions.append(result)
        if result.error is not None and result.error.fatal:
            raise BadInput(result.error.message)
        if result.lesson:
            record.lessons_learnt.append(result.lesson)
        log(f"[coder] {region.node.name}: " + ", ".join(f"{a.status}" for a in result.attempts)
            + (f" (request failed: {result.error.message})" if result.error else ""))
    coded = {r.region.node.name: (r.code, r.region.function) for r in record.regions if r.code is not None}
    if not coded:
        return {}
    source, note = render(schedule, coded)
    candidate = Candidate("coder", [], schedule, source, f"{note}, {len(coded)} region(s) coded by the LLM")
    select(outcome, [candidate], verify([candidate]))
    on_trial(outcome.trials[-1])
    return coded if outcome.trials[-1].accepted else {}


def _verdict(trial: Trial) -> str:
    r = trial.result
    if not r.correct:
        return f"rejected by the harness: {r.status.value}: {r.reason[:200]}"
    timing = f"{r.candidate_ms:.4f} ms" if r.timing_meaningful and r.candidate_ms else "not timed"
    return f"verified, {timing}, " + ("kept (the best so far)" if trial.accepted else "not better than the best")


def report_lines(record: LLMRecord, client: LLMClient) -> list[str]:
    """The report's LLM section: the model, what the rounds cost, and each proposal with its fate."""
    s, u = client.settings, client.usage
    lines = ["## LLM proposals", "",
             f"- model: `{s.model}` at `{s.base_url or '(replay)'}`" + (" (replayed from the cache)" if client.replay
                                                                          else ""),
             f"- requests {u.requests} (retries {u.retries}, failed {u.failures}), cache hits {u.cache_hits}, "
             f"tokens {u.prompt_tokens} in / {u.completion_tokens} out, {u.seconds:.1f} s of requests",
             "- per-kernel times are estimates (the harness times the whole program); the roofline bounds are exact"]
    if record.stopped:
        lines.append(f"- stopped early: {record.stopped}")
    lines += ["", "| round | steps | rejected answers | outcome |", "| --- | --- | --- | --- |"]
    for p in record.proposals:
        steps = "; ".join(p.steps) or "-"
        rejected = " / ".join(r[:120] for r in p.rejections) or "-"
        lines.append(f"| {p.round + 1} | {steps[:300]} | {rejected} | {p.outcome} |".replace("\n", " "))
    if record.regions:
        lines += ["", "Micro coder (regions kept as PyTorch calls, each verified alone as a sub-problem):", "",
                  "| region | operator | rounds (verdicts) | entered model_new.py candidate |", "| --- | --- | --- | --- |"]
        for r in record.regions:
            verdicts = ", ".join(f"{a.status}" + (f" ({a.reason[:80]})" if a.reason else "") for a in r.attempts)
            if r.error is not None:
                verdicts += f"; request failed: {r.error.message[:80]}"
            lines.append(f"| {r.region.node.name} | {r.region.node.target} | {verdicts.replace('|', '/')} | "
                         f"{'yes' if r.code is not None else 'no'} |".replace("\n", " "))
    for title, lessons in (("Lessons the prompt carried", record.lessons_used),
                           ("Lessons distilled in this run", record.lessons_learnt)):
        if lessons:
            lines += ["", f"{title}:", *(f"- {lesson}" for lesson in lessons)]
    return lines
