"""Checks of an emitted circuit: simulation against the oracle (Icarus Verilog) and a Yosys cell count."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qimeng.hardware.bsd.oracle import Oracle, VerilogOracle
from qimeng.hardware.ports import Interface, read_interface, stage_sources, yosys_error
from qimeng.hardware.tools import private_dir, run_tool


@dataclass(frozen=True)
class SimulationCheck:
    vectors: int
    mismatches: int  # vectors on which some output of the simulated Verilog differs from the oracle

    @property
    def accuracy(self) -> float:
        return 1.0 - self.mismatches / self.vectors


def simulate_against_oracle(verilog: Path, top: str, oracle: Oracle, x: np.ndarray, iface: Interface | None = None) -> SimulationCheck:
    """Simulate module ``top`` of ``verilog`` on the rows of ``x`` and count disagreements with the oracle.

    ``iface`` skips reading the ports with Yosys when the caller wrote the module itself.
    """
    circuit = VerilogOracle(verilog, iface or read_interface([verilog], top=top))
    wrong = (circuit(x) != oracle(x)).any(axis=1)
    return SimulationCheck(len(x), int(wrong.sum()))


def yosys_cell_count(verilog: Path, top: str, timeout_s: float = 300.0) -> int:
    """Number of cells after ``synth`` (Yosys' generic gate library)."""
    with private_dir() as tmp:
        staged = stage_sources([verilog], Path(tmp))
        script = f'read_verilog "{next(iter(staged))}"; synth -top {top}; tee -q -o stat.txt stat'
        run = run_tool(["yosys", "-q", "-p", script], Path(tmp), timeout_s)
        if not run.ok:
            raise RuntimeError(f"{verilog}: Yosys synthesis failed: {yosys_error(run.output, staged)}")
        # "Number of cells: N" (Yosys 0.23) or "N cells" (Yosys 0.70)
        found = re.search(r"Number of cells:\s+(\d+)|^\s*(\d+) cells$", (Path(tmp) / "stat.txt").read_text(), re.M)
    if not found:
        raise RuntimeError(f"{verilog}: no cell count in Yosys' statistics")
    return int(found.group(1) or found.group(2))
