"""``qimeng hw equiv``: decide whether a design is equivalent to a reference.

Formal first (Yosys SAT: a proof for combinational designs, temporal induction from a common reset
state for sequential ones); when the proof is out of reach, random simulation decides. Every
counterexample, formal or simulated, is replayed in Icarus Verilog before it is reported and is
written as a self-contained replay testbench.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from qimeng.core.verdict import BadInput
from qimeng.hardware.equiv.formal import prove
from qimeng.hardware.equiv.namespace import rename_modules
from qimeng.hardware.equiv.simulate import SimulationFailure, simulate
from qimeng.hardware.equiv.testbench import PHASES, Bench, Run, random_testbench, replay_testbench
from qimeng.hardware.ports import Design, Reset, infer_clock, infer_reset, port_mismatches, read_design
from qimeng.hardware.tools import private_dir
from qimeng.settings import Settings


@dataclass(frozen=True)
class EquivOptions:
    top: str | None = None
    clock: str | None = None
    reset: Reset | None = None
    formal: bool = True
    depth: int = 20  # induction / bounded-check depth in cycles
    cycles: int = 2000  # per simulation run
    seeds: tuple[int, ...] = (1, 2, 3)
    timeout_s: float = 300.0
    replay_path: Path | None = None  # where a counterexample's replay testbench goes


@dataclass
class Counterexample:
    cycle: int  # cycle of the stimulus (0 = first) at which outputs differ
    phase: str
    stimulus: str  # which run produced it
    inputs: dict[str, str]
    ref_outputs: dict[str, str]
    dut_outputs: dict[str, str]
    replay: str  # path of the replay testbench
    replay_command: str


@dataclass
class EquivResult:
    """The JSON of ``qimeng hw equiv --json``."""

    equivalent: bool
    method: str  # "formal-sat" | "formal-induction" | "simulation"
    coverage: str  # what was proven or simulated
    top: str
    clock: str | None
    reset: str | None
    sequential: bool
    proof: bool = False
    depth: int = 0
    cycles: int = 0
    seeds: list[int] = field(default_factory=list)
    counterexample: Counterexample | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def check_equivalence(ref: Path, dut: Path, options: EquivOptions = EquivOptions()) -> EquivResult:
    """Compare ``dut`` with ``ref``; raises BadInput for unreadable Verilog or differing ports."""
    ref_design = read_design([ref], options.top)
    dut_design = read_design([dut], options.top)
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
    bench = Bench(iface, clock, reset, dut_design.interface.module)
    result = EquivResult(False, "", "", iface.module, clock, _reset_text(reset), sequential)
    if sequential and clock is None:
        result.notes.append("no clock input recognised (use --clock): simulation drives every input, clocks included, randomly")
    replay_path = options.replay_path or Settings.from_env().work_dir / "equiv" / f"{dut.stem}_vs_{ref.stem}_cex.v"

    with private_dir("qimeng-equiv-") as tmp:
        work = Path(tmp)
        sources = [work / "ref.v", work / "dut.v"]
        sources[0].write_text(rename_modules(ref.read_text(), ref_design.modules, "ref_"))
        sources[1].write_text(rename_modules(dut.read_text(), dut_design.modules, "dut_"))

        if options.formal:
            outcome = prove(ref, dut, iface.module, dut_design.interface.module, sequential, reset, options.depth,
                            min(60.0, options.timeout_s))
            if outcome.status == "proven":
                result.equivalent, result.proof, result.depth = True, True, outcome.depth
                result.method = "formal-induction" if sequential else "formal-sat"
                result.coverage = (
                    f"proof by induction (length {outcome.depth}) from a common reset state" if sequential
                    else "SAT proof over every input"
                )
                return result
            if outcome.status == "counterexample":
                stimulus = _formal_stimulus(bench, outcome.steps)
                replayed = _replay(work, sources, bench, stimulus, "formal counterexample (Yosys SAT)", replay_path, ref, dut)
                if replayed is not None:
                    result.method, result.depth = ("formal-induction" if sequential else "formal-sat"), len(stimulus)
                    result.coverage = (
                        f"SAT found a difference within {len(stimulus)} cycle(s) of reset; replayed in simulation" if sequential
                        else "SAT found an input on which outputs differ; replayed in simulation"
                    )
                    result.counterexample = replayed
                    return result
                result.notes.append("a formal counterexample did not replay in simulation (it needs an initial state simulation cannot reach); simulating")
            elif outcome.status == "bounded":
                result.depth = outcome.depth
                result.notes.append(f"no difference within {outcome.depth} cycles of reset (bounded proof); induction did not close")
            else:
                result.notes.append(f"formal check unavailable: {outcome.message.strip()[:500]}")

        runs = _runs(options.seeds, reset)
        (work / "tb.v").write_text(random_testbench(bench, runs, options.cycles))
        result.method, result.seeds = "simulation", list(options.seeds)
        try:
            report = simulate(work, [work / "tb.v", *sources], "qimeng_equiv_tb", options.timeout_s)
        except SimulationFailure as failure:
            _check_reference_alone(work, ref, ref_design, bench, runs, options)
            result.coverage = f"{failure}; the reference simulated against itself finishes, so the design is at fault"
            return result
        if report.mismatch is None:
            result.equivalent, result.cycles = True, report.cycles
            bounded = f"; bounded proof to depth {result.depth}" if result.depth else ""
            result.coverage = f"{report.cycles} random cycles in {len(runs)} runs (seeds {list(options.seeds)}){bounded}"
            return result
        m = report.mismatch
        run = runs[m["run"]]
        result.cycles = sum(options.cycles for _ in range(m["run"])) + m["cycle"] + 1
        result.coverage = f"mismatch after {result.cycles} simulated cycles"
        result.counterexample = _write_counterexample(
            bench, report.trace, m, run.describe(reset is not None), replay_path, sources, ref, dut
        )
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


def _formal_stimulus(bench: Bench, steps: list[dict[str, str]]) -> list[tuple[int, int, int]]:
    stimulus = []
    for step in steps:
        values = {p.name: int(step.get(f"in_{p.name}", "0").replace("x", "0").replace("z", "0"), 2) for p in bench.data_inputs}
        level = int(step.get(f"in_{bench.reset.name}", "0").replace("x", "0"), 2) if bench.reset else 0
        stimulus.append((bench.pack(values), level, 0))
    return stimulus


def _replay(
    work: Path, sources: list[Path], bench: Bench, stimulus: list[tuple[int, int, int]], origin: str,
    replay_path: Path, ref: Path, dut: Path,
) -> Counterexample | None:
    """Replay ``stimulus``; a Counterexample (with its replay file written) when outputs differ."""
    (work / "replay.v").write_text(replay_testbench(bench, stimulus, origin))
    report = simulate(work, [work / "replay.v", *sources], "qimeng_replay", 120)
    if report.mismatch is None:
        return None
    return _write_counterexample(bench, stimulus, report.mismatch, origin, replay_path, sources, ref, dut)


def _write_counterexample(
    bench: Bench, trace: list[tuple[int, int, int]], m: dict, origin: str, replay_path: Path,
    sources: list[Path], ref: Path, dut: Path,
) -> Counterexample:
    stimulus = trace[: m["cycle"] + 1]
    title = (
        f"Counterexample from qimeng hw equiv: {dut} differs from {ref} at cycle {m['cycle']} "
        f"({PHASES[m['phase']]}); stimulus: {origin}.\n"
        f"Run: iverilog -g2012 -o replay.vvp {replay_path.name} && vvp -n replay.vvp"
    )
    text = replay_testbench(bench, stimulus, title) + "\n// ---- reference, renamed ----\n" + sources[0].read_text()
    text += "\n// ---- design under test, renamed ----\n" + sources[1].read_text()
    replay_path.parent.mkdir(parents=True, exist_ok=True)
    replay_path.write_text(text)
    return Counterexample(
        cycle=m["cycle"], phase=PHASES[m["phase"]], stimulus=origin, inputs=m["in"],
        ref_outputs=m["ref"], dut_outputs=m["dut"], replay=str(replay_path),
        replay_command=f"iverilog -g2012 -o replay.vvp {replay_path} && vvp -n replay.vvp",
    )
