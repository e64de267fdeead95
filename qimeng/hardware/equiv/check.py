"""``qimeng hw equiv``: decide whether a design is equivalent to a reference.

Semantics (the same for proof and simulation, stated in every result): registers start at X unless an
``initial`` gives their value; inputs are 0/1 (X/Z too in simulation with ``x_inputs``); an output bit is
compared only where the reference gives 0/1, and there the design must give the same 0/1 value.

Formal first (Yosys SAT, three-valued: a proof for combinational designs, temporal induction for
sequential ones), but only where the formal model is exact (``clocking.formal_limits``); random
simulation always runs too. Verdicts: ``equivalent`` needs a proof or a simulation without mismatch,
and in either case every reference output bit known in enough comparisons; ``not_equivalent`` needs a
mismatch that replays in Icarus Verilog (written as a self-contained replay testbench); anything else,
a proof and a simulation that disagree included, is ``inconclusive``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from qimeng.core.verdict import BadInput
from qimeng.hardware.equiv.clocking import formal_limits
from qimeng.hardware.equiv.formal import FormalOutcome, prove
from qimeng.hardware.equiv.namespace import rename_modules
from qimeng.hardware.equiv.result import Counterexample, EquivOptions, EquivResult, FormalReport
from qimeng.hardware.equiv.simulate import SimReport, SimulationFailure, simulate
from qimeng.hardware.equiv.testbench import PHASES, Bench, Run, Step, random_testbench, replay_testbench
from qimeng.hardware.ports import Design, Reset, infer_clock, infer_reset, port_mismatches, read_design_or_slang
from qimeng.hardware.tools import private_dir, yosys_version
from qimeng.settings import Settings


def check_equivalence(ref: Path, dut: Path, options: EquivOptions = EquivOptions()) -> EquivResult:
    """Compare ``dut`` with ``ref``; raises BadInput for unreadable Verilog or differing ports."""
    ref_design = read_design_or_slang([ref], options.top)
    dut_design = read_design_or_slang([dut], options.top)
    iface = ref_design.interface
    problems = port_mismatches(iface, dut_design.interface)
    if problems:
        raise BadInput(f"ports of {dut} ({dut_design.interface.module}) differ from {ref} ({iface.module}):\n  " + "\n  ".join(problems))
    if any(p.direction == "inout" for p in iface.ports):
        raise BadInput(f"{ref}: inout ports are not supported")
    clock = options.clock or infer_clock(iface)
    reset = options.reset or infer_reset(iface)
    for name in filter(None, (clock, reset.name if reset else None)):
        if iface.port(name) is None or iface.port(name).direction != "input":
            raise BadInput(f"{ref}: {iface.module} has no input named {name!r}")
    sequential = ref_design.stateful or dut_design.stateful
    bench = Bench(iface, clock, reset, dut_design.interface.module, options.x_inputs)
    result = EquivResult("inconclusive", "", "", iface.module, clock, _reset_text(reset), sequential, yosys_version())
    if options.x_inputs:
        result.inputs = "0/1/X/Z in simulation (--x-inputs); the proof covers 0/1 inputs only"
    if sequential and clock is None:
        result.notes.append("no clock input recognised (use --clock): simulation drives every input, clocks included, randomly")
    replay_path = options.replay_path or Settings.from_env().work_dir / "equiv" / f"{dut.stem}_vs_{ref.stem}_cex.v"

    with private_dir("qimeng-equiv-") as tmp:
        work = Path(tmp)
        sources = [work / "ref.v", work / "dut.v"]
        sources[0].write_text(rename_modules(ref.read_text(), ref_design.modules, "ref_"))
        sources[1].write_text(rename_modules(dut.read_text(), dut_design.modules, "dut_"))
        ctx = _Context(work, sources, bench, replay_path, ref, dut, options)
        outcome = _formal(result, ctx, ref_design, dut_design) if options.formal else None
        if result.counterexample is not None:
            return result
        runs = _runs(options.seeds, reset)
        (work / "tb.v").write_text(random_testbench(bench, runs, options.cycles))
        result.seeds = list(options.seeds)
        try:
            report = simulate(work, [work / "tb.v", *sources], "qimeng_equiv_tb", options.timeout_s)
        except SimulationFailure as failure:
            _check_reference_alone(work, ref, ref_design, bench, runs, options)
            result.verdict, result.method = "not_equivalent", "simulation"
            result.coverage = f"{failure}; the reference simulated against itself finishes, so the design is at fault"
            if outcome is not None and outcome.status == "proven":
                result.notes.append("disagreement: the formal proof found no difference, but the design hangs the simulator")
            return result
        if report.mismatch is not None:
            return _simulation_mismatch(result, ctx, report, runs, outcome)
        return _decide_without_mismatch(result, ctx, report, runs, outcome)


@dataclass(frozen=True)
class _Context:
    work: Path
    sources: list[Path]
    bench: Bench
    replay_path: Path
    ref: Path
    dut: Path
    options: EquivOptions


def _formal(result: EquivResult, ctx: _Context, ref_design: Design, dut_design: Design) -> FormalOutcome | None:
    """Run the proof where its model is exact; a replayed counterexample decides (sets result.counterexample)."""
    bench, options = ctx.bench, ctx.options
    designs = {"reference": ref_design, "design": dut_design}
    limits = [f"{role}: Yosys cannot read it ({d.unread_by_yosys}); pyslang read its ports"
              for role, d in designs.items() if d.unread_by_yosys]
    limits += formal_limits(designs, bench.clock) if result.sequential else []
    if limits:
        result.formal = FormalReport("not run", False, limits)
        result.notes.append("no exact formal model (one step per rising edge of the clock input): "
                            + "; ".join(limits) + "; simulation decides")
        return None
    kind = "formal-induction" if result.sequential else "formal-sat"
    outcome = prove(ctx.ref, ctx.dut, bench.iface.module, bench.dut_module, result.sequential, bench.reset,
                    options.depth, min(60.0, options.timeout_s))
    result.formal = FormalReport(outcome.status, True, message=outcome.message.strip()[:500])
    result.depth = outcome.depth
    if outcome.status == "counterexample":
        stimulus = _formal_stimulus(bench, outcome.steps)
        replayed = _replay(ctx, stimulus, "formal counterexample (Yosys SAT)")
        result.formal.replayed = replayed is not None
        if replayed is not None:
            result.verdict, result.method, result.depth = "not_equivalent", kind, len(stimulus)
            result.coverage = (
                f"SAT found a difference within {len(stimulus)} cycle(s) of reset; replayed in simulation" if result.sequential
                else "SAT found an input on which outputs differ; replayed in simulation"
            )
            result.counterexample = replayed
        else:
            last = outcome.steps[-1] if outcome.steps else {}
            said = ", ".join(f"{role} {p.name}={last.get(f'{prefix}_{p.name}', '?')}" for p in bench.iface.outputs
                             for role, prefix in (("reference", "gold"), ("design", "gate")))
            result.notes.append(
                f"disagreement: Yosys SAT (three-valued) found a difference in cycle {len(stimulus) - 1} ({said}), but "
                "Icarus simulation of the same stimulus shows none (Verilog's X propagation differs); no equivalence "
                "is claimed"
            )
    elif outcome.status == "bounded":
        result.notes.append(f"no difference within {outcome.depth} cycles of reset (bounded proof); induction did not close")
    elif outcome.status == "error":
        result.notes.append(f"formal check unavailable: {result.formal.message}")
    return outcome


def _simulation_mismatch(result: EquivResult, ctx: _Context, report: SimReport, runs: list[Run], outcome: FormalOutcome | None) -> EquivResult:
    m = report.mismatch
    result.verdict, result.method = "not_equivalent", "simulation"
    result.cycles = ctx.options.cycles * m["run"] + m["cycle"] + 1
    result.coverage = f"mismatch after {result.cycles} simulated cycles"
    if outcome is not None and outcome.status == "proven":
        result.notes.append("disagreement: the formal proof (three-valued) found no difference, but simulation, whose "
                            "X propagation is Verilog's, does; simulation decides")
    run = runs[m["run"]]
    result.counterexample = _write_counterexample(ctx, report.trace, m, run.describe(ctx.bench.reset is not None))
    return result


def _decide_without_mismatch(result: EquivResult, ctx: _Context, report: SimReport, runs: list[Run],
                             outcome: FormalOutcome | None) -> EquivResult:
    """No mismatch in simulation: equivalent when the proof (if any) agrees and the reference was known enough."""
    options = ctx.options
    result.cycles, result.checks = report.cycles, report.checks
    result.known = dict(zip(ctx.bench.output_bits, report.known))
    needed = max(1, int(options.min_known * report.checks))
    thin = [f"{bit} ({count})" for bit, count in result.known.items() if count < needed]
    simulated = f"{report.cycles} random cycles in {len(runs)} runs (seeds {list(options.seeds)}), {report.checks} comparisons"
    proven = outcome is not None and outcome.status == "proven"
    result.method = ("formal-induction" if result.sequential else "formal-sat") if proven else "simulation"
    if thin:
        result.coverage = (f"{simulated} without mismatch, but the reference output was X in too many of them: "
                           f"{', '.join(thin[:16])}{' ...' if len(thin) > 16 else ''} known in fewer than {needed}")
        return result
    if outcome is not None and outcome.status == "counterexample":
        result.coverage = f"{simulated} without mismatch, but the proof found a difference that did not replay"
        return result
    result.verdict = "equivalent"
    if proven:
        result.proof = True
        first = " with the reset asserted first" if ctx.bench.reset else ""
        what = (f"proof by induction (length {result.depth}) from X registers{first}"
                if result.sequential else "SAT proof over every 0/1 input")
        result.coverage = f"{what}; cross-checked by {simulated}"
    else:
        bounded = f"; bounded proof to depth {result.depth}" if outcome is not None and outcome.status == "bounded" else ""
        result.coverage = simulated + bounded
    return result


def _check_reference_alone(work: Path, ref: Path, design: Design, bench: Bench, runs: list[Run], options: EquivOptions) -> None:
    """Simulate the reference against itself; BadInput when it too hangs or stops early."""
    alone = work / "alone"
    alone.mkdir()
    text = ref.read_text()
    for prefix in ("ref_", "dut_"):
        (alone / f"{prefix}.v").write_text(rename_modules(text, design.modules, prefix))
    (alone / "tb.v").write_text(random_testbench(replace(bench, dut_module=""), runs, options.cycles))
    try:
        simulate(alone, [alone / "tb.v", alone / "ref_.v", alone / "dut_.v"], "qimeng_equiv_tb", options.timeout_s)
    except SimulationFailure as failure:
        raise BadInput(f"{ref}: the reference itself cannot be simulated with this stimulus: {failure}") from None


def _reset_text(reset: Reset | None) -> str | None:
    if reset is None:
        return None
    return reset.name + (":active-low" if reset.active_low else "") + (":async" if reset.is_async else "")


def _runs(seeds: tuple[int, ...], reset: Reset | None) -> list[Run]:
    """Every seed; with a reset, every polarity and timing, the inferred polarity first."""
    if reset is None:
        return [Run(s, 1, False) for s in seeds]
    levels = (0, 1) if reset.active_low else (1, 0)
    return [Run(s, level, asy) for s in seeds for level in levels for asy in (False, True)]


def _formal_stimulus(bench: Bench, steps: list[dict[str, str]]) -> list[Step]:
    """The SAT model's inputs, one cycle per time step (inputs held over the whole cycle)."""
    stimulus = []
    for step in steps:
        data = bench.pack({p.name: step.get(f"in_{p.name}", "0").replace("x", "0").replace("z", "0") for p in bench.data_inputs})
        level = int(step.get(f"in_{bench.reset.name}", "0").replace("x", "0"), 2) if bench.reset else 0
        stimulus.append(Step(data, level, 0, data, 0))
    return stimulus


def _replay(ctx: _Context, stimulus: list[Step], origin: str) -> Counterexample | None:
    """Replay ``stimulus``; a Counterexample (with its replay file written) when outputs differ."""
    (ctx.work / "replay.v").write_text(replay_testbench(ctx.bench, stimulus, origin))
    try:
        report = simulate(ctx.work, [ctx.work / "replay.v", *ctx.sources], "qimeng_replay", min(120.0, ctx.options.timeout_s))
    except SimulationFailure:
        return None  # the random simulation that follows meets the same failure and reports it
    if report.mismatch is None:
        return None
    return _write_counterexample(ctx, stimulus, report.mismatch, origin)


def _write_counterexample(ctx: _Context, trace: list[Step], m: dict, origin: str) -> Counterexample:
    stimulus, path = trace[: m["cycle"] + 1], ctx.replay_path
    title = (
        f"Counterexample from qimeng hw equiv: {ctx.dut} differs from {ctx.ref} at cycle {m['cycle']} "
        f"({PHASES[m['phase']]}); stimulus: {origin}.\n"
        f"Run: iverilog -g2012 -o replay.vvp {path.name} && vvp -n replay.vvp"
    )
    text = replay_testbench(ctx.bench, stimulus, title) + "\n// ---- reference, renamed ----\n" + ctx.sources[0].read_text()
    text += "\n// ---- design under test, renamed ----\n" + ctx.sources[1].read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return Counterexample(
        cycle=m["cycle"], phase=PHASES[m["phase"]], stimulus=origin, inputs=m["in"],
        ref_outputs=m["ref"], dut_outputs=m["dut"], replay=str(path),
        replay_command=f"iverilog -g2012 -o replay.vvp {path} && vvp -n replay.vvp",
    )
