"""Verilator 5 decides where Icarus 11 cannot compile a testbench and sample (the streaming operator)."""

from pathlib import Path

import pytest

from qimeng.hardware.simulators import Simulator
from qimeng.hardware.verilog_eval import find_problems, run_verilog_eval

REF = """module RefModule(input [3:0] in, output [3:0] out);
  assign out = {in[0], in[1], in[2], in[3]};
endmodule
"""
TEST = """module tb;
  reg [3:0] in; wire [3:0] out_ref, out_dut; integer i, errors = 0;
  RefModule good(.in(in), .out(out_ref));
  TopModule dut(.in(in), .out(out_dut));
  initial begin
    for (i = 0; i < 16; i = i + 1) begin
      in = i; #1 if (out_ref !== out_dut) errors = errors + 1;
    end
    $display("Mismatches: %0d in %0d samples", errors, 16);
    $finish;
  end
endmodule
"""
SAMPLES = {  # Icarus 11 rejects the streaming operator {<<{...}}; Verilator 5 reads it
    "right.sv": "module TopModule(input [3:0] in, output [3:0] out);\n  assign out = {<<{in}};\nendmodule\n",
    "wrong.sv": "module TopModule(input [3:0] in, output [3:0] out);\n  assign out = {<<2{in}};\nendmodule\n",
    "broken.sv": "module TopModule(input [3:0] in, output [3:0] out);\n  assign out = {<<{in}}\nendmodule\n",
}


@pytest.mark.slow
def test_verilator_decides_where_icarus_cannot_compile(tmp_path: Path):
    problems, samples = tmp_path / "problems", tmp_path / "samples" / "Prob001_reverse4"
    problems.mkdir()
    samples.mkdir(parents=True)
    (problems / "Prob001_reverse4_ref.sv").write_text(REF)
    (problems / "Prob001_reverse4_test.sv").write_text(TEST)
    for name, text in SAMPLES.items():
        (samples / name).write_text(text)
    assert len(find_problems(problems)) == 1
    report = run_verilog_eval(problems, tmp_path / "samples", timeout_s=60.0, workers=1)
    results = {Path(s.sample).name: s for s in report.problems[0].samples}
    assert {name: (r.status, r.simulator) for name, r in results.items()} == {
        "broken.sv": ("compile_error", Simulator.ICARUS.value),  # neither compiles it: Icarus' error is reported
        "right.sv": ("ok", Simulator.VERILATOR.value),
        "wrong.sv": ("incorrect", Simulator.VERILATOR.value),
    }
    assert results["wrong.sv"].mismatches > 0 and results["right.sv"].total == 16
    assert "Icarus could not compile it" in results["right.sv"].reason and "two-state" in results["right.sv"].reason
    assert "Verilator 5 could not build it either" in results["broken.sv"].reason
