"""Building and running a testbench: Icarus Verilog, or Verilator 5 where Icarus cannot compile it.

Icarus 11 (Debian) rejects some SystemVerilog that the benchmarks' Icarus 12 reads (casts, the
streaming operator ``{<<{...}}``). Where Icarus fails to compile, the same sources are built by
``verilator --binary --timing`` before the sample is given up; the result records which simulator
decided (Icarus, with its error, when neither builds them). Verilator is two-state: X and Z become 0 or 1, so an output that is X where the reference is
known can pass a ``!==`` comparison that Icarus would fail. Both run through
:func:`qimeng.hardware.tools.run_tool` (sandboxed, hard timeouts).
"""

from __future__ import annotations

import enum
import shutil
from dataclasses import dataclass
from pathlib import Path

from qimeng.hardware.tools import ToolRun, run_tool

VERILATOR_MIN_BUILD_S = 300.0  # a Verilator build compiles C++ (about 10 CPU seconds): never less than this
VERILATOR_FLAGS = ["--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style"]
TWO_STATE = "Verilator is two-state (X and Z read as 0 or 1)"


class Simulator(str, enum.Enum):
    ICARUS = "icarus"
    VERILATOR = "verilator"


@dataclass(frozen=True)
class Build:
    """A compiled testbench, and which simulator compiled it."""

    simulator: Simulator
    compiled: ToolRun  # the build that decided: Icarus', or Verilator's where only Verilator built it
    icarus_output: str = ""  # Icarus' failed compile, when Verilator built
    verilator_output: str = ""  # Verilator's failed build, when neither compiled

    @property
    def ok(self) -> bool:
        return self.compiled.ok

    def note(self) -> str:
        """One line for the result when Verilator was tried, else empty."""
        if self.simulator is Simulator.VERILATOR:
            return f"Icarus could not compile it ({_first_error(self.icarus_output)}); Verilator 5 built it: {TWO_STATE}"
        if self.verilator_output:
            return f"Verilator 5 could not build it either ({_first_error(self.verilator_output)})"
        return ""


def build(sources: list[str], top: str | None, work: Path, timeout_s: float, icarus_flags: tuple[str, ...] = (),
          fallback: bool = True) -> Build:
    """Compile ``sources`` (names in ``work``) with Icarus (``-g2012``); where that fails (not by
    timeout) and ``fallback``, with Verilator. A missing Verilator keeps Icarus' failure."""
    top_flag = ["-s", top] if top else []
    icarus = run_tool(["iverilog", *icarus_flags, "-g2012", *top_flag, "-o", "sim.vvp", *sources], work, timeout_s)
    if icarus.ok or icarus.timed_out or not fallback or shutil.which("verilator") is None:
        return Build(Simulator.ICARUS, icarus)
    top_flag = ["--top-module", top] if top else []
    verilator = run_tool(["verilator", "--binary", "-j", "1", *VERILATOR_FLAGS, *top_flag, "--Mdir", "vobj",
                          "-o", "sim", *sources], work, max(timeout_s, VERILATOR_MIN_BUILD_S))
    if not verilator.ok:
        return Build(Simulator.ICARUS, icarus, verilator_output=verilator.output or "timed out")
    return Build(Simulator.VERILATOR, verilator, icarus.output)


def run(b: Build, work: Path, timeout_s: float) -> ToolRun:
    """Run a successful build (``vvp -n``: ``$stop`` ends the run, as ``$finish``)."""
    if b.simulator is Simulator.ICARUS:
        return run_tool(["vvp", "-n", "sim.vvp"], work, timeout_s)
    return run_tool([str(work / "vobj" / "sim")], work, timeout_s)


def elaborates_alone(b: Build, source: str, top: str, work: Path, timeout_s: float) -> ToolRun:
    """Whether ``source`` elaborates with ``top`` as its top module, by the simulator that built ``b``."""
    if b.simulator is Simulator.ICARUS:
        return run_tool(["iverilog", "-g2012", "-s", top, "-o", "alone.vvp", source], work, timeout_s)
    return run_tool(["verilator", "--lint-only", *VERILATOR_FLAGS, "--top-module", top, source], work, timeout_s)


def _first_error(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if "error" in ln.lower()] or output.strip().splitlines()[-1:]
    return lines[0][:300] if lines else "no output"
