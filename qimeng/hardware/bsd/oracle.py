"""Black-box oracles for circuit learning: a Python function ``file.py:function`` or a Verilog module.

An oracle maps a (batch, N) uint8 0/1 matrix (column i = input bit i) to a (batch, M) 0/1 matrix.
A Verilog oracle is compiled once with Icarus Verilog; its input ports are concatenated in
declaration order (the first port holds the lowest bits), likewise its outputs. With N <= 20 it is
simulated once on every input (Icarus Verilog) and then answered from the table; wider oracles
are simulated per batch with Verilator when it is installed (much faster), else Icarus Verilog.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from qimeng.core.verdict import BadInput
from qimeng.hardware.bsd.bits import all_vectors, from_hex_lines, to_hex_lines, to_index
from qimeng.hardware.ports import Interface, read_interface
from qimeng.hardware.tools import private_dir, run_tool

EXHAUSTIVE_TABLE_MAX_INPUTS = 20


class Oracle(Protocol):
    n_inputs: int
    n_outputs: int

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class FunctionOracle:
    """Wraps a vectorised Python function and checks the shape and values of what it returns."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], n_inputs: int, n_outputs: int, name: str = "") -> None:
        self.fn, self.n_inputs, self.n_outputs, self.name = fn, n_inputs, n_outputs, name or getattr(fn, "__name__", "oracle")
        self.queries = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = np.asarray(self.fn(np.ascontiguousarray(x, dtype=np.uint8)))
        if y.shape != (x.shape[0], self.n_outputs):
            raise BadInput(f"oracle {self.name} returned shape {y.shape}, expected {(x.shape[0], self.n_outputs)}")
        if y.dtype != np.uint8:
            if ((y != 0) & (y != 1)).any():
                raise BadInput(f"oracle {self.name} returned values other than 0 and 1")
            y = y.astype(np.uint8)
        self.queries += x.shape[0]
        return y


class TableOracle:
    """An oracle answered from its complete truth table (rows indexed by the input vector's integer)."""

    def __init__(self, table: np.ndarray, n_inputs: int, name: str) -> None:
        self.table, self.n_inputs, self.n_outputs, self.name = table, n_inputs, table.shape[1], name
        self.queries = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.queries += x.shape[0]
        return self.table[to_index(x)]


class VerilogOracle:
    """A Verilog module simulated in batches: one simulator run per batch of input vectors.

    ``simulator`` is "iverilog" (compiles in well under a second) or "verilator" (compiles in
    seconds, then simulates about 1M vectors/s; worth it for millions of queries).
    """

    def __init__(self, path: Path, iface: Interface, timeout_s: float = 300.0, simulator: str = "iverilog") -> None:
        self.path, self.iface, self.timeout_s = path, iface, timeout_s
        self.n_inputs = sum(p.width for p in iface.inputs)
        self.n_outputs = sum(p.width for p in iface.outputs)
        self.name, self.queries = f"{path}:{iface.module}", 0
        self._dir = private_dir("qimeng-oracle-")
        self.work = Path(self._dir.name)
        (self.work / "tb.v").write_text(batch_testbench(iface, self.n_inputs, self.n_outputs))
        if simulator == "verilator":
            build = ["verilator", "--binary", "-j", "2", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                     "--top-module", "qimeng_oracle_tb", "tb.v", str(path.resolve())]
            self.command = [str(self.work / "obj_dir" / "Vqimeng_oracle_tb")]
        else:
            build = ["iverilog", "-g2012", "-o", "oracle.vvp", "-s", "qimeng_oracle_tb", "tb.v", str(path.resolve())]
            self.command = ["vvp", "-n", "oracle.vvp"]
        run = run_tool(build, self.work, 600)
        if not run.ok:
            raise BadInput(f"{path}: {simulator} cannot compile the oracle: {run.output[-3000:]}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        (self.work / "in.hex").write_bytes(to_hex_lines(x))
        run = run_tool(self.command, self.work, self.timeout_s)
        if not run.ok:
            raise BadInput(f"{self.name}: simulation failed: {run.output[-2000:]}")
        try:
            y = from_hex_lines((self.work / "out.hex").read_bytes(), self.n_outputs)
        except ValueError as exc:
            raise BadInput(f"{self.name}: {exc}") from exc
        if y.shape[0] != x.shape[0]:
            raise BadInput(f"{self.name}: simulator answered {y.shape[0]} of {x.shape[0]} vectors")
        self.queries += x.shape[0]
        return y


def port_connections(iface: Interface) -> list[str]:
    """Named connections of the module's inputs to slices of ``x`` and its outputs to slices of ``y``."""
    conns = []
    for ports, bus in ((iface.inputs, "x"), (iface.outputs, "y")):
        lo = 0
        for p in ports:
            conns.append(f".{p.name}({bus}[{lo + p.width - 1}:{lo}])")
            lo += p.width
    return conns


def batch_testbench(iface: Interface, n: int, m: int) -> str:
    """A testbench reading input vectors (hex lines) from in.hex and writing outputs to out.hex."""
    conns = port_connections(iface)
    return f"""module qimeng_oracle_tb;
  reg [{n - 1}:0] x, x_read;
  wire [{m - 1}:0] y;
  integer fin, fout, got;
  {iface.module} dut({", ".join(conns)});
  initial begin
    fin = $fopen("in.hex", "r");
    fout = $fopen("out.hex", "w");
    got = $fscanf(fin, "%h\\n", x_read);
    while (got == 1) begin
      x = x_read;
      #1 $fwrite(fout, "%h\\n", y);
      got = $fscanf(fin, "%h\\n", x_read);
    end
    $fclose(fout);
    $finish;
  end
endmodule
"""


def load_oracle(spec: str, n_inputs: int, n_outputs: int) -> Oracle:
    """Load ``file.py:function`` or ``design.v[:module]`` and check its input and output widths."""
    path_text, _, name = spec.partition(":") if not spec.endswith((".v", ".sv")) else (spec, "", "")
    path = Path(path_text)
    if not path.is_file():
        raise BadInput(f"oracle {spec}: no such file {path}")
    if path.suffix == ".py":
        if not name:
            raise BadInput(f"oracle {spec}: name the function, as in {path}:function")
        module_spec = importlib.util.spec_from_file_location(f"qimeng_oracle_{path.stem}", path)
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise BadInput(f"oracle {spec}: importing {path} failed: {exc!r}") from exc
        fn = getattr(module, name, None)
        if not callable(fn):
            raise BadInput(f"oracle {spec}: {path} has no function {name!r}")
        return FunctionOracle(fn, n_inputs, n_outputs, spec)
    if path.suffix in (".v", ".sv"):
        iface = read_interface([path], top=name or None)
        widths = (sum(p.width for p in iface.inputs), sum(p.width for p in iface.outputs))
        if widths != (n_inputs, n_outputs):
            raise BadInput(
                f"oracle {spec}: module {iface.module} has {widths[0]} input and {widths[1]} output bits, "
                f"not --inputs {n_inputs} --outputs {n_outputs}"
            )
        if n_inputs <= EXHAUSTIVE_TABLE_MAX_INPUTS:
            oracle = VerilogOracle(path, iface)
            return TableOracle(oracle(all_vectors(n_inputs)), n_inputs, oracle.name)
        return VerilogOracle(path, iface, simulator="verilator" if shutil.which("verilator") else "iverilog")
    raise BadInput(f"oracle {spec}: expected file.py:function or a .v/.sv module")
