"""The emitted Verilog read back and evaluated in numpy, against Icarus Verilog and hand-counted mismatches."""

import re

import numpy as np
import pytest

from qimeng.hardware.bsd import FunctionOracle, emit_verilog, learn_circuit
from qimeng.hardware.bsd.bits import all_vectors
from qimeng.hardware.bsd import netlist
from qimeng.hardware.bsd.netlist import read_netlist
from qimeng.hardware.bsd.verify import simulate_against_oracle


def random_oracle(seed: int, n: int = 8, m: int = 3) -> FunctionOracle:
    table = np.random.default_rng(seed).integers(0, 2, size=(1 << n, m), dtype=np.uint8)
    return FunctionOracle(lambda x: table[x.astype(np.int64) @ (1 << np.arange(n))], n, m)


def flip_first_mux(text: str) -> str:
    """Swap the two data inputs of the first ``s ? h : l`` (a single-point mutant of the circuit)."""
    return re.sub(r"= (\S+) \? (\S+) : (\S+);", r"= \1 ? \3 : \2;", text, count=1)


@pytest.mark.parametrize("decompose", [True, False])
@pytest.mark.parametrize("seed", range(2))
def test_netlist_agrees_with_icarus_on_a_mutant(tmp_path, seed, decompose):
    oracle = random_oracle(seed)
    text = emit_verilog(learn_circuit(oracle).diagram, 8, "r", decompose)
    path = tmp_path / "r.v"
    path.write_text(text)
    x = all_vectors(8)
    assert read_netlist(path).exhaustive_mismatches(oracle) == 0
    assert (read_netlist(path).evaluate(x) == oracle(x)).all()
    path.write_text(flip_first_mux(text))
    icarus = simulate_against_oracle(path, "r", oracle, x).mismatches  # the independent simulator
    assert icarus > 0 and read_netlist(path).exhaustive_mismatches(oracle) == icarus


def test_every_gate_form_against_hand_truth_tables(tmp_path):
    path = tmp_path / "g.v"
    forms = ["x[0]", "~x[0]", "x[0] & x[1]", "~x[0] & x[1]", "~x[0] | x[1]", "x[0] | x[1]", "x[0] ? x[1] : x[2]"]
    body = "".join(f"  assign w{k} = {f};\n" for k, f in enumerate(forms))
    outputs = ", ".join(f"w{k}" for k in reversed(range(len(forms))))
    path.write_text(f"module g(input [2:0] x, output [6:0] y);\n  wire w0;\n{body}  assign y = {{{outputs}}};\nendmodule\n")
    x = all_vectors(3)
    a, b, c = x[:, 0], x[:, 1], x[:, 2]
    expected = np.stack([a, 1 - a, a & b, (1 - a) & b, (1 - a) | b, a | b, np.where(a == 1, b, c)], axis=1)
    assert (read_netlist(path).evaluate(x) == expected).all()
    assert read_netlist(path).exhaustive_mismatches(lambda v: expected[v.astype(np.int64) @ (1 << np.arange(3))]) == 0


def test_wide_inputs_checked_in_blocks(tmp_path, monkeypatch):
    # a 6-bit adder with carry in (13 inputs) expanded in blocks of 2**10, as 24 inputs are in blocks of 2**20
    monkeypatch.setattr(netlist, "EXHAUSTIVE_BLOCK_INPUTS", 10)

    def add(x):
        total = x[:, :6].astype(np.int64) @ (1 << np.arange(6)) + x[:, 6:12].astype(np.int64) @ (1 << np.arange(6)) + x[:, 12]
        return ((total[:, None] >> np.arange(7)) & 1).astype(np.uint8)

    oracle = FunctionOracle(add, 13, 7)
    text = emit_verilog(learn_circuit(oracle).diagram, 13, "add", decompose=False)
    path = tmp_path / "add.v"
    path.write_text(text)
    assert read_netlist(path).exhaustive_mismatches(oracle) == 0
    path.write_text(flip_first_mux(text))
    x = all_vectors(13)
    icarus = simulate_against_oracle(path, "add", oracle, x).mismatches
    assert icarus > 0 and read_netlist(path).exhaustive_mismatches(oracle) == icarus


def test_foreign_verilog_is_rejected(tmp_path):
    path = tmp_path / "f.v"
    path.write_text("module f(input [1:0] x, output [0:0] y);\n  wire w0;\n  assign w0 = x[0] ^ x[1];\n  assign y = {w0};\nendmodule\n")
    with pytest.raises(ValueError, match="not one of the emitter's forms"):
        read_netlist(path)
    path.write_text("module f(input [1:0] x, output [0:0] y);\n  assign y = {w3};\nendmodule\n")
    with pytest.raises(ValueError, match="not an input or an earlier wire"):
        read_netlist(path)
