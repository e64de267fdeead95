"""Running a testbench of two renamed designs with Icarus Verilog and reading its mismatch report."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from qimeng.core.verdict import BadInput
from qimeng.hardware.equiv.testbench import Step
from qimeng.hardware.tools import run_tool


class SimulationFailure(RuntimeError):
    """The simulation ran past its time limit or ended without its final report (e.g. a ``$finish``)."""


@dataclass
class SimReport:
    cycles: int  # cycles simulated (all runs) when no mismatch stopped the simulation
    mismatch: dict | None = None  # run, cycle, phase, inputs, ref, dut (binary strings)
    trace: list[Step] = field(default_factory=list)  # the mismatching run's stimulus
    checks: int = 0  # output comparisons made (random testbench, when it ran to the end)
    known: list[int] = field(default_factory=list)  # per output bit (Bench.output_bits): comparisons with a known reference


def simulate(work: Path, sources: list[Path], top: str, timeout_s: float) -> SimReport:
    """Compile ``sources`` (top ``top``) in ``work`` and run it.

    Raises BadInput when it does not compile and SimulationFailure when it hangs or stops early.
    """
    compiled = run_tool(["iverilog", "-g2012", "-o", "tb.vvp", "-s", top, *map(str, sources)], work, 120)
    if not compiled.ok:
        raise BadInput(f"Icarus Verilog cannot compile the designs together: {compiled.output[-3000:]}")
    run = run_tool(["vvp", "-n", "tb.vvp"], work, timeout_s)
    if run.timed_out:
        raise SimulationFailure(f"the simulation ran past {timeout_s:.0f} s")
    report = SimReport(cycles=0)
    done = re.search(r"QIMENG_DONE cycles=(\d+)", run.stdout)
    if done:
        report.cycles = int(done.group(1))
    known = re.search(r"QIMENG_KNOWN checks=(\d+)((?: \d+)*)", run.stdout)
    if known:
        report.checks, report.known = int(known.group(1)), [int(k) for k in known.group(2).split()]
    first = re.search(r"QIMENG_MISMATCH run=(\d+) cycle=(\d+) phase=(\d+)", run.stdout)
    if first:
        block = run.stdout[first.start():].split("QIMENG_MISMATCH", 2)[1]
        report.mismatch = {
            "run": int(first.group(1)), "cycle": int(first.group(2)), "phase": int(first.group(3)),
            **{role: dict(re.findall(rf"QIMENG_{role.upper()} (\S+)=(\S+)", block)) for role in ("in", "ref", "dut")},
        }
        trace_file = work / "trace.txt"
        if trace_file.exists():
            report.trace = [
                Step(d, int(r), int(p, 2), dh, int(h))
                for d, r, p, dh, h in (ln.split() for ln in trace_file.read_text().splitlines() if ln.strip())
            ]
    elif not done:
        raise SimulationFailure(f"the simulation ended without its final report: {run.output[-1000:]}")
    return report
