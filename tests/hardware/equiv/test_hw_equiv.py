import json
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from qimeng.cli import app
from qimeng.hardware.equiv.check import EquivOptions, check_equivalence

DATA = Path(__file__).parents[1] / "data" / "equiv"


def equiv(ref: str, dut: str, *args: str):
    result = CliRunner().invoke(app, ["hw", "equiv", str(DATA / ref), str(DATA / dut), *args, "--json"])
    return result.exit_code, (json.loads(result.output) if result.exit_code in (0, 1, 4) else result.output)


def replay(path: str) -> str:
    """Run a replay testbench exactly as its header tells the user."""
    workdir = Path(path).parent
    subprocess.run(["iverilog", "-g2012", "-o", "replay.vvp", path], cwd=workdir, check=True)
    return subprocess.run(["vvp", "-n", "replay.vvp"], cwd=workdir, capture_output=True, text=True, check=True).stdout


def test_combinational_proof():
    code, r = equiv("adder_ref.v", "adder_ripple.v")
    assert code == 0 and r["method"] == "formal-sat" and r["proof"] and not r["sequential"]


def test_combinational_counterexample_replays(tmp_path):
    code, r = equiv("adder_ref.v", "adder_bug.v", "--cex", str(tmp_path / "cex.v"))
    assert code == 1 and r["method"] == "formal-sat"
    c = r["counterexample"]
    assert c["inputs"] == {"a": "01001101", "b": "00000011"}
    assert c["ref_outputs"] == {"s": "001010000"} and c["dut_outputs"] == {"s": "000000000"}
    assert "NOT EQUIVALENT" in replay(c["replay"])


def test_sequential_induction_proof():
    code, r = equiv("acc_ref.v", "acc_same.v")
    assert code == 0 and r["method"] == "formal-induction" and r["proof"] and r["clock"] == "clk" and r["reset"] == "reset"


def test_sequential_formal_counterexample(tmp_path):
    code, r = equiv("acc_ref.v", "acc_bug.v", "--cex", str(tmp_path / "cex.v"))
    c = r["counterexample"]
    assert code == 1 and c["inputs"]["d"] == "0111" and c["ref_outputs"]["q"] == "1101"
    assert c["ref_outputs"]["z"] != c["dut_outputs"]["z"]
    assert "NOT EQUIVALENT" in replay(c["replay"])


def test_simulation_finds_rare_sequential_bug(tmp_path):
    code, r = equiv("acc_ref.v", "acc_bug.v", "--no-formal", "--cex", str(tmp_path / "cex.v"))
    assert code == 1 and r["method"] == "simulation" and "seed" in r["counterexample"]["stimulus"]
    assert "NOT EQUIVALENT" in replay(r["counterexample"]["replay"])


def test_simulation_equivalent_reports_coverage():
    code, r = equiv("acc_ref.v", "acc_same.v", "--no-formal", "--cycles", "300", "--seeds", "4,5")
    # 2 seeds x 2 reset polarities x 2 reset timings
    assert code == 0 and r["method"] == "simulation" and r["cycles"] == 8 * 300 and r["seeds"] == [4, 5]


def test_async_versus_sync_reset_differs():
    code, r = equiv("dff_async.v", "dff_sync.v")
    assert code == 1 and r["reset"] == "areset:async"
    code, r = equiv("dff_async.v", "dff_sync.v", "--no-formal")
    assert code == 1 and r["counterexample"]["ref_outputs"]["q"] == "00110100"


def test_bounded_proof_then_simulation():
    code, r = equiv("mod10_ref.v", "mod10_small.v", "--depth", "8", "--cycles", "500")
    assert code == 0 and r["method"] == "simulation" and r["depth"] == 8 and "bounded proof" in r["coverage"]


def test_gray_counter_equivalent_and_reset_override():
    code, r = equiv("count_bin.v", "count_gray.v", "--reset", "rst_n:active-low")
    assert code == 0 and r["reset"] == "rst_n:active-low"


def test_bad_input_exit_2(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module adder(input [7:0] a, input [7:0] b, output [8:0] s);\n  assign s = a +;\nendmodule\n")
    code, out = equiv("adder_ref.v", str(bad))
    assert code == 2 and "bad.v:2" in out
    code, out = equiv("adder_ref.v", "acc_ref.v")
    assert code == 2 and "port 'a'" in out and "port 'clk'" in out
    code, out = equiv("acc_ref.v", "acc_same.v", "--reset", "nosuch")
    assert code == 2 and "no input named 'nosuch'" in out


def test_library_api_default_replay_goes_to_work_dir(tmp_path):
    result = check_equivalence(DATA / "acc_ref.v", DATA / "acc_bug.v", EquivOptions(formal=False, seeds=(1,)))
    assert not result.equivalent and result.cycles > 0
    assert Path(result.counterexample.replay).resolve().is_relative_to((tmp_path / "work").resolve())


def test_verilog_eval_ref_against_samples_with_other_top_names():
    problems = DATA.parent / "verilog_eval" / "problems"
    samples = DATA.parent / "verilog_eval" / "samples"
    ok = CliRunner().invoke(app, ["hw", "equiv", str(problems / "Prob003_dff8r_ref.sv"),
                                  str(samples / "Prob003_dff8r" / "sample01.sv"), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["top"] == "RefModule"
    bad = CliRunner().invoke(app, ["hw", "equiv", str(problems / "Prob003_dff8r_ref.sv"),
                                   str(samples / "Prob003_dff8r" / "sample02.sv"), "--no-formal", "--json"])
    assert bad.exit_code == 1 and json.loads(bad.output)["counterexample"]["inputs"]["reset"] == "1"


def test_design_that_hangs_the_simulator_is_not_equivalent():
    code, r = equiv("adder_ref.v", "adder_hangs.v", "--no-formal", "--timeout", "3")
    assert code == 1 and "ran past 3 s" in r["coverage"] and r["counterexample"] is None
    code, out = equiv("adder_hangs.v", "adder_ref.v", "--no-formal", "--timeout", "3")
    assert code == 2 and "the reference itself cannot be simulated" in out
