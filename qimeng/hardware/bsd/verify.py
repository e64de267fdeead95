"""A simulation of an emitted circuit against the oracle with Icarus Verilog (the tests' cross-check of
:mod:`qimeng.hardware.bsd.netlist`; cell counts: :mod:`qimeng.hardware.cell_count`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qimeng.hardware.bsd.bits import from_hex_lines, to_hex_lines
from qimeng.hardware.bsd.oracle import Oracle, port_connections
from qimeng.hardware.ports import Interface, read_interface
from qimeng.hardware.tools import private_dir, run_tool


@dataclass(frozen=True)
class SimulationCheck:
    vectors: int
    mismatches: int  # vectors on which some output of the simulated Verilog differs from the oracle

    @property
    def accuracy(self) -> float:
        return 1.0 - self.mismatches / self.vectors


def simulate_against_oracle(verilog: Path, top: str, oracle: Oracle, x: np.ndarray, iface: Interface | None = None,
                            timeout_s: float = 300.0) -> SimulationCheck:
    """Simulate module ``top`` of ``verilog`` with Icarus Verilog on the rows of ``x`` and count
    disagreements with the oracle.

    One simulator run: the testbench loads every vector with ``$readmemh``, applies them one per
    time step and writes every output with ``$writememh`` (no per-vector file I/O). ``iface``
    skips reading the ports with Yosys when the caller wrote the module itself.
    """
    iface = iface or read_interface([verilog], top=top)
    n, m = sum(p.width for p in iface.inputs), sum(p.width for p in iface.outputs)
    with private_dir("qimeng-sim-") as tmp:
        work = Path(tmp)
        (work / "in.hex").write_bytes(to_hex_lines(x))
        (work / "tb.v").write_text(_memory_testbench(iface, n, m, len(x)))
        build = run_tool(["iverilog", "-g2012", "-o", "sim.vvp", "-s", "qimeng_check_tb", "tb.v", str(verilog.resolve())],
                         work, timeout_s)
        if not build.ok:
            raise RuntimeError(f"{verilog}: iverilog cannot compile the circuit: {build.output[-2000:]}")
        run = run_tool(["vvp", "-n", "sim.vvp"], work, timeout_s)
        if not run.ok:
            raise RuntimeError(f"{verilog}: simulation failed: {run.output[-2000:]}")
        text = re.sub(rb"//[^\n]*\n", b"", (work / "out.hex").read_bytes())  # $writememh's address comments
    try:
        y = from_hex_lines(text, m)
    except ValueError as exc:
        raise RuntimeError(f"{verilog}: {exc}") from exc
    if y.shape[0] != len(x):
        raise RuntimeError(f"{verilog}: simulator answered {y.shape[0]} of {len(x)} vectors")
    wrong = (y != oracle(x)).any(axis=1)
    return SimulationCheck(len(x), int(wrong.sum()))


def _memory_testbench(iface: Interface, n: int, m: int, count: int) -> str:
    return f"""module qimeng_check_tb;
  reg [{n - 1}:0] xs [0:{count - 1}];
  reg [{m - 1}:0] ys [0:{count - 1}];
  reg [{n - 1}:0] x;
  wire [{m - 1}:0] y;
  integer i;
  {iface.module} dut({", ".join(port_connections(iface))});
  initial begin
    $readmemh("in.hex", xs);
    for (i = 0; i < {count}; i = i + 1) begin
      x = xs[i];
      #1 ys[i] = y;
    end
    $writememh("out.hex", ys);
    $finish;
  end
endmodule
"""
