import json
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from qimeng.cli import app
from qimeng.core.verdict import BadInput
from qimeng.hardware.bsd import FunctionOracle, SamplingPlan, emit_verilog, learn_circuit, learn_diagram, load_oracle
from qimeng.hardware.bsd.bits import all_vectors, from_hex_lines, to_hex_lines
from qimeng.hardware.bsd.diagram import Diagram, reduce_diagram
from qimeng.hardware.bsd.verify import simulate_against_oracle
from qimeng.hardware.cell_count import yosys_cell_count

ORACLES = Path(__file__).parents[1] / "data" / "oracles.py"


def oracle(name: str, n: int, m: int):
    return load_oracle(f"{ORACLES}:{name}", n, m)


def test_hex_round_trip_and_all_vectors():
    x = np.random.default_rng(0).integers(0, 2, size=(257, 35), dtype=np.uint8)
    assert (from_hex_lines(to_hex_lines(x), 35) == x).all()
    assert all_vectors(3).tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1]]
    with pytest.raises(ValueError, match="X or Z"):
        from_hex_lines(b"0x\n", 8)


def test_diagram_evaluate_and_reduce():
    # x0 ? (x1 ? 1 : 0) : (x1 ? 1 : 0)  == x1, after reduction one node
    d = Diagram([0, 1], np.array([-1, -1, 0, 1, 1]), np.array([0, 1, 3, 0, 0]), np.array([0, 1, 4, 1, 1]), np.array([2, 4]))
    x = all_vectors(2)
    assert d.evaluate(x).tolist() == np.stack([x[:, 1], x[:, 1]], axis=1).tolist()
    r = reduce_diagram(d)
    assert r.n_nodes == 1 and r.roots[0] == r.roots[1]  # both outputs share the one node x1
    assert r.evaluate(x).tolist() == d.evaluate(x).tolist()


def test_learn_bit_constant_and_xor():
    rng = np.random.default_rng(0)
    assert learn_diagram(lambda x: np.zeros((len(x), 1), np.uint8), 6, 1, SamplingPlan(), rng).roots.tolist() == [0]
    parity = learn_diagram(lambda x: x.sum(axis=1, keepdims=True).astype(np.uint8) & 1, 6, 1, SamplingPlan(), rng)
    assert (parity.evaluate(all_vectors(6))[:, 0] == all_vectors(6).sum(axis=1) % 2).all()
    assert parity.n_nodes == 11  # 1 + 2 * 5 nodes: the minimal parity diagram


def test_adder8_exact_under_10s():
    start = time.perf_counter()
    result = learn_circuit(oracle("adder8", 17, 9))
    assert time.perf_counter() - start < 10
    assert result.exhaustive and result.check_vectors == 1 << 17 and result.accuracy == 1.0


def test_alu8_exact_on_exhaustive_check():
    result = learn_circuit(oracle("alu8", 19, 8))
    assert result.exhaustive and result.accuracy == 1.0


def test_alu16_accuracy_on_fresh_random_vectors():
    start = time.perf_counter()
    result = learn_circuit(oracle("alu16", 35, 16))
    assert time.perf_counter() - start < 120
    assert not result.exhaustive and result.check_vectors == 100_000 and result.accuracy >= 0.9999


def test_refinement_rounds_fix_a_needle():
    # equals x0 except on one input out of 2**16: sampling alone misses it; the exhaustive check finds it
    def needle(x):
        y = x[:, :1].copy()
        y[(x[:, 1:] == np.arange(15) % 2).all(axis=1)] ^= 1
        return y

    result = learn_circuit(FunctionOracle(needle, 16, 1), SamplingPlan(samples=64, min_samples=64), exact_max_inputs=0)
    assert result.accuracy == 1.0 and result.rounds >= 2 and result.history[0]["accuracy"] < 1.0


def test_emitted_verilog_simulates_like_the_oracle(tmp_path):
    o = oracle("adder8", 17, 9)
    result = learn_circuit(o)
    path = tmp_path / "adder.v"
    path.write_text(emit_verilog(result.diagram, 17, "adder_learned"))
    sim = simulate_against_oracle(path, "adder_learned", o, all_vectors(17)[::7])
    assert sim.mismatches == 0 and sim.vectors == len(range(0, 1 << 17, 7))
    assert 0 < yosys_cell_count(path, "adder_learned") < 2000


def test_wrong_circuit_is_caught_by_simulation(tmp_path):
    o = oracle("majority5", 5, 1)
    path = tmp_path / "wrong.v"
    path.write_text("module wrong(input [4:0] x, output [0:0] y); assign y = x[0]; endmodule\n")
    assert simulate_against_oracle(path, "wrong", o, all_vectors(5)).mismatches > 0


def test_verilog_module_as_oracle(tmp_path):
    src = tmp_path / "cmp.v"
    src.write_text("module cmp(input [3:0] a, input [3:0] b, output lt, output eq);\n"
                   "  assign lt = a < b; assign eq = a == b;\nendmodule\n")
    o = load_oracle(str(src), 8, 2)
    x = all_vectors(8)
    a, b = x[:, :4] @ (1 << np.arange(4)), x[:, 4:] @ (1 << np.arange(4))
    assert (o(x) == np.stack([a < b, a == b], axis=1)).all()
    assert learn_circuit(o).accuracy == 1.0
    with pytest.raises(BadInput, match="8 input and 2 output bits"):
        load_oracle(str(src), 9, 2)


def test_bad_oracles(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\ndef wrong_shape(x):\n    return np.zeros((len(x), 3), np.uint8)\n")
    with pytest.raises(BadInput, match="no function 'missing'"):
        load_oracle(f"{bad}:missing", 4, 1)
    with pytest.raises(BadInput, match="returned shape"):
        load_oracle(f"{bad}:wrong_shape", 4, 1)(all_vectors(4))
    with pytest.raises(BadInput, match="no such file"):
        load_oracle("nowhere.py:f", 4, 1)


def test_cli_learn_json(tmp_path):
    out = tmp_path / "maj.v"
    result = CliRunner().invoke(app, ["hw", "learn", f"{ORACLES}:majority5", "--inputs", "5", "--outputs", "1",
                                      "--out", str(out), "--name", "maj", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["success"] and report["accuracy"] == 1.0 and report["check"] == "exhaustive"
    assert report["simulated_vectors"] == 32 and report["simulation_mismatches"] == 0 and report["cells"] > 0
    assert "module maj(input [4:0] x, output [0:0] y);" in out.read_text()


def test_cli_learn_target_missed_exits_1(tmp_path):
    result = CliRunner().invoke(app, ["hw", "learn", f"{ORACLES}:alu8", "--inputs", "19", "--outputs", "8",
                                      "--out", str(tmp_path / "a.v"), "--samples", "16", "--rounds", "1", "--exact-max-inputs", "0",
                                      "--json"])
    report = json.loads(result.output)
    assert result.exit_code == 1 and not report["success"] and report["accuracy"] < 1.0
    assert report["simulated_vectors"] == 1 << 19 and report["simulation"] == "exhaustive"
    assert report["simulation_mismatches"] > 0


def test_cli_learn_bad_input_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["hw", "learn", f"{ORACLES}:nosuch", "--inputs", "5", "--outputs", "1",
                                      "--out", str(tmp_path / "x.v")])
    assert result.exit_code == 2 and "no function 'nosuch'" in result.output


@pytest.mark.slow
def test_wide_verilog_oracle_runs_on_verilator(tmp_path):
    src = tmp_path / "wide.v"
    src.write_text("module wide(input [10:0] a, input [10:0] b, output [11:0] s); assign s = a + b; endmodule\n")
    o = load_oracle(str(src), 22, 12)
    assert o.command[0].endswith("Vqimeng_oracle_tb")  # N > 20: batches simulated by Verilator
    x = np.random.default_rng(0).integers(0, 2, size=(5000, 22), dtype=np.uint8)
    total = x[:, :11] @ (1 << np.arange(11)) + x[:, 11:] @ (1 << np.arange(11))
    assert (o(x) == (total[:, None] >> np.arange(12)) & 1).all()


def test_cli_learn_no_cells_skips_synthesis(tmp_path):
    out = tmp_path / "maj.v"
    result = CliRunner().invoke(app, ["hw", "learn", f"{ORACLES}:majority5", "--inputs", "5", "--outputs", "1",
                                      "--out", str(out), "--no-cells", "--json"])
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["cells"] is None and report["simulation_mismatches"] == 0
    assert report["simulated_vectors"] == 32
