"""Formal equivalence with Yosys: a miter of both designs solved by SAT.

Three-valued throughout (``-enable_undef``): inputs are 0/1, registers start at X unless an ``initial``
gives their value (the simulation's semantics), ``'x`` constants stay X. A reference output bit that is
X is don't-care (``miter -ignore_gold_x``); where the reference gives 0/1 the design must give the same
0/1 value. Combinational designs: one SAT proof over all inputs. Sequential designs: temporal induction
on the miter from that initial state with the reset asserted in the first step, up to a bounded depth;
one step per rising clock edge (exact only for the designs ``clocking.formal_limits`` accepts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from qimeng.hardware.ports import ELABORATE, Reset, stage_sources, yosys_error
from qimeng.hardware.tools import private_dir, run_tool


@dataclass
class FormalOutcome:
    status: str  # "proven" | "counterexample" | "bounded" (no difference up to depth) | "error"
    depth: int = 0  # induction length of the proof, or the base-case depth reached
    steps: list[dict[str, str]] = field(default_factory=list)  # per step: signal -> binary value
    message: str = ""


def prove(
    ref: Path, dut: Path, ref_top: str, dut_top: str, sequential: bool, reset: Reset | None,
    max_depth: int = 20, timeout_s: float = 120.0,
) -> FormalOutcome:
    """Try to prove ``dut`` equivalent to ``ref``; never raises on solver trouble (status "error")."""
    with private_dir() as tmp:
        staged = {**stage_sources([ref], Path(tmp), "ref"), **stage_sources([dut], Path(tmp), "dut")}
        names = list(staged)
        script = _script(names[0], names[1], ref_top, dut_top, sequential, reset, max_depth)
        (Path(tmp) / "equiv.ys").write_text("\n".join(script) + "\n")
        run = run_tool(["yosys", "-s", "equiv.ys"], Path(tmp), timeout_s)
    if run.timed_out:
        return FormalOutcome("error", message=f"Yosys SAT timed out after {timeout_s:.0f} s")
    log = run.stdout
    if not run.ok:
        return FormalOutcome("error", message=yosys_error(run.output, staged))
    if "SAT proof finished - no model found: SUCCESS!" in log:
        return FormalOutcome("proven", depth=0)
    if "Induction step proven: SUCCESS!" in log:
        return FormalOutcome("proven", depth=len(re.findall(r"Base case for induction length \d+ proven", log)))
    if "model found" in log and "FAIL!" in log:
        return FormalOutcome("counterexample", steps=_model_table(log.rsplit("FAIL!", 1)[1]))
    if "Reached maximum number of time steps" in log:
        return FormalOutcome("bounded", depth=max_depth)
    return FormalOutcome("error", message="Yosys SAT gave no verdict: " + "\n".join(log.strip().splitlines()[-5:]))


def _script(ref: str, dut: str, ref_top: str, dut_top: str, sequential: bool, reset: Reset | None, max_depth: int) -> list[str]:
    load = lambda path, top, as_: (  # noqa: E731
        f'read_verilog -sv "{path}"; hierarchy -check -top {top}; {ELABORATE}; rename {top} {as_}; design -stash {as_}'
    )
    script = [
        load(ref, ref_top, "gold"), load(dut, dut_top, "gate"),
        "design -copy-from gold -as gold gold", "design -copy-from gate -as gate gate",
        "miter -equiv -flatten -make_assert -make_outputs -ignore_gold_x gold gate miter",
        "hierarchy -top miter",
    ]
    sat = "sat -prove-asserts -enable_undef -set-def-inputs -show-inputs -show-outputs"
    if sequential:
        script.append("async2sync")
        sat += f" -tempinduct -set-init-undef -maxsteps {max_depth}"
        if reset is not None:
            sat += f" -set-at 1 in_{reset.name} {0 if reset.active_low else 1}"
    return script + [sat + " miter"]


_ROW = re.compile(r"^\s*(?:(\d+|init)\s+)?\\(\S+)\s+\S+\s+\S+\s+([01xz]+)\s*$")


def _model_table(text: str) -> list[dict[str, str]]:
    """Per time step, the signal values of Yosys' printed SAT model (one step when combinational)."""
    steps: dict[int, dict[str, str]] = {}
    for line in text.splitlines():
        row = _ROW.match(line)
        if row and row.group(1) != "init":
            steps.setdefault(int(row.group(1) or 1), {})[row.group(2)] = row.group(3)
    return [steps[t] for t in sorted(steps)]
