"""Sizes of learned diagrams and circuits against independently computed and hand-derived values."""

import sys
from pathlib import Path

import numpy as np
import pytest

from qimeng.hardware.bsd import FunctionOracle, SamplingPlan, emit_verilog, learn_circuit, learn_diagram, load_oracle
from qimeng.hardware.bsd.bits import all_vectors
from qimeng.hardware.bsd.diagram import Diagram, reduce_diagram
from qimeng.hardware.bsd.exact import exact_diagram, table_diagram, truth_table
from qimeng.hardware.bsd.reorder import sift
from qimeng.hardware.bsd.verify import simulate_against_oracle
from qimeng.hardware.cell_count import yosys_cell_count

sys.path.insert(0, str(Path(__file__).parent))
from arith_oracles import comparator8  # noqa: E402


def adder(width: int):
    """x[0:w] = a, x[w:2w] = b, x[2w] = carry in; y = a + b + cin (w + 1 bits)."""

    def add(x: np.ndarray) -> np.ndarray:
        weights = 1 << np.arange(width, dtype=np.int64)
        total = x[:, :width].astype(np.int64) @ weights + x[:, width : 2 * width].astype(np.int64) @ weights + x[:, 2 * width]
        return ((total[:, None] >> np.arange(width + 1)) & 1).astype(np.uint8)

    return add


def exact_shared_size(fn, n: int, order: list[int]) -> int:
    """Nodes of the reduced ordered shared diagram of ``fn`` under ``order``, from its whole truth table:
    bottom-up, a node per distinct (lo, hi) pair of sub-functions that differ (no learning involved)."""
    rows = np.arange(1 << n, dtype=np.int64)
    x = np.zeros((1 << n, n), np.uint8)
    for depth, v in enumerate(order):  # the first variable of the order is the top bit of the row number
        x[:, v] = (rows >> (n - 1 - depth)) & 1
    level = fn(x).T.astype(np.int64)  # (outputs, 2**n) node numbers; leaves 0 and 1
    size, next_id = 0, 2
    for _ in range(n):
        lo, hi = level[:, 0::2], level[:, 1::2]
        split = lo != hi
        _, inverse = np.unique(lo[split] * (1 << 32) + hi[split], return_inverse=True)
        level = lo.copy()
        level[split] = next_id + inverse.reshape(-1)
        next_id += inverse.max(initial=-1) + 1
        size += inverse.max(initial=-1) + 1
    return int(size)


def diagram_from_table(fn, n: int, order: list[int]) -> Diagram:
    """A single-output diagram under ``order`` built by Shannon expansion of the truth table."""
    var, lo, hi = [-1, -1], [0, 1], [0, 1]

    def build(depth: int, fixed: dict[int, int]) -> int:
        if depth == n:
            x = np.array([[fixed[i] for i in range(n)]], np.uint8)
            return int(fn(x)[0, 0])
        v = order[depth]
        a, b = build(depth + 1, {**fixed, v: 0}), build(depth + 1, {**fixed, v: 1})
        var.append(v), lo.append(a), hi.append(b)
        return len(var) - 1

    root = build(0, {})
    return reduce_diagram(Diagram(order, np.array(var), np.array(lo), np.array(hi), np.array([root])))


@pytest.mark.parametrize("width", [2, 4])
def test_adder_diagram_is_the_minimal_shared_diagram(width):
    n, fn = 2 * width + 1, adder(width)
    result = learn_circuit(FunctionOracle(fn, n, width + 1))
    d = result.diagram
    assert result.accuracy == 1.0 and (d.evaluate(all_vectors(n)) == fn(all_vectors(n))).all()
    assert d.n_nodes == exact_shared_size(fn, n, d.order)  # reduced: no node more than its own order needs
    # Under carry in, a0, b0, a1, b1, ... the shared diagram has (3w^2 + 13w) / 2 nodes (hand count:
    # w + 1 at carry in; per bit k, 2 for each of the w - k + 1 outputs that depend on it at a_k,
    # and at b_k the two literals of s_k plus one carry test per higher output, one shared at the top bit).
    interleaved = [2 * width] + [v for k in range(width) for v in (k, width + k)]
    assert exact_shared_size(fn, n, interleaved) == (3 * width**2 + 13 * width) // 2
    assert d.n_nodes <= (3 * width**2 + 13 * width) // 2


@pytest.mark.parametrize("seed", range(3))
def test_exact_diagram_of_a_truth_table(seed):
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 2, size=(1 << 9, 4), dtype=np.uint8)
    table[:, 3] = table[:, 0] & table[:, 1]
    fn = lambda x: table[x.astype(np.int64) @ (1 << np.arange(9))]  # noqa: E731
    order = [int(v) for v in rng.permutation(9)]
    d = table_diagram(truth_table(fn, 9, 4), order)
    assert d.order == order and (d.evaluate(all_vectors(9)) == fn(all_vectors(9))).all()
    assert d.n_nodes == exact_shared_size(fn, 9, order)
    best = exact_diagram(fn, 9, 4)
    assert (best.evaluate(all_vectors(9)) == fn(all_vectors(9))).all()
    assert best.n_nodes <= exact_shared_size(fn, 9, list(range(9)))


def test_outputs_share_nodes():
    # y0 = x0 & x1, y1 = x0 & x1 (same function), y2 = ~(x0 & x1) shares nothing without complement edges
    fn = lambda x: np.stack([x[:, 0] & x[:, 1], x[:, 0] & x[:, 1], 1 - (x[:, 0] & x[:, 1])], axis=1)  # noqa: E731
    d = learn_diagram(fn, 3, 3, SamplingPlan(), np.random.default_rng(0))
    assert d.roots[0] == d.roots[1] and d.n_nodes == 4  # 2 nodes for x0 & x1, 2 for its complement


def test_sifting_finds_the_linear_order():
    # x0 x1 + x2 x3 + x4 x5: 14 nodes under x0, x2, x4, x1, x3, x5 and 6 (one per variable) under x0..x5
    fn = lambda x: ((x[:, 0] & x[:, 1]) | (x[:, 2] & x[:, 3]) | (x[:, 4] & x[:, 5]))[:, None]  # noqa: E731
    bad = diagram_from_table(fn, 6, [0, 2, 4, 1, 3, 5])
    assert bad.n_nodes == 14
    good = sift(bad)
    assert good.n_nodes == 6 and (good.evaluate(all_vectors(6)) == fn(all_vectors(6))).all()


def test_adder8_under_reference_node_and_cell_counts(tmp_path):
    fn = adder(8)
    result = learn_circuit(FunctionOracle(fn, 17, 9))
    assert result.accuracy == 1.0 and result.n_nodes <= 127  # the reference learner's 127 nodes
    assert result.n_nodes == exact_shared_size(fn, 17, result.diagram.order)  # reduced under its order
    assert result.n_nodes < (3 * 64 + 104) // 2  # the minimum of the interleaved order, low bits first
    path = tmp_path / "adder.v"
    path.write_text(emit_verilog(result.diagram, 17, "adder"))
    assert simulate_against_oracle(path, "adder", FunctionOracle(fn, 17, 9), all_vectors(17)).mismatches == 0
    assert yosys_cell_count(path, "adder") <= 76  # the reference learner's 76 cells


def test_comparator8_cells(tmp_path):
    oracle = FunctionOracle(comparator8, 16, 3)
    result = learn_circuit(oracle)
    assert result.accuracy == 1.0 and result.n_nodes <= 79
    path = tmp_path / "cmp.v"
    path.write_text(emit_verilog(result.diagram, 16, "cmp"))
    assert simulate_against_oracle(path, "cmp", oracle, all_vectors(16)).mismatches == 0
    assert yosys_cell_count(path, "cmp") <= 79  # the reference learner's 79 cells


@pytest.mark.parametrize("seed", range(4))
def test_decomposed_network_of_random_functions_simulates_exactly(tmp_path, seed):
    table = np.random.default_rng(seed).integers(0, 2, size=(256, 3), dtype=np.uint8)
    table[:, 2] = table[:, 0] ^ (np.arange(256) & 1)  # one output close to another
    oracle = FunctionOracle(lambda x: table[x.astype(np.int64) @ (1 << np.arange(8))], 8, 3)
    result = learn_circuit(oracle)
    assert result.accuracy == 1.0
    path = tmp_path / "r.v"
    path.write_text(emit_verilog(result.diagram, 8, "r"))
    assert simulate_against_oracle(path, "r", oracle, all_vectors(8)).mismatches == 0


def test_hw_learn_keeps_the_emission_yosys_makes_smaller(tmp_path):
    from qimeng.hardware.bsd.report import learn_to_verilog

    src = tmp_path / "shift.py"  # an 8-bit barrel shifter: decomposition does not suit it
    src.write_text("import numpy as np\n"
                   "def shift(x):\n"
                   "    a = x[:, :8].astype(np.int64) @ (1 << np.arange(8)); s = x[:, 8:11].astype(np.int64) @ (1 << np.arange(3))\n"
                   "    return (((a << s) & 255)[:, None] >> np.arange(8)) & 1\n")
    out = tmp_path / "shift.v"
    report = learn_to_verilog(f"{src}:shift", 11, 8, out, "shift")
    assert report.success and report.simulated_vectors == 2048 and report.simulation_mismatches == 0
    learned = learn_circuit(load_oracle(f"{src}:shift", 11, 8)).diagram
    counts = []
    for decompose in (True, False):
        path = tmp_path / f"{decompose}.v"
        path.write_text(emit_verilog(learned, 11, "shift", decompose))
        counts.append(yosys_cell_count(path, "shift"))
    assert report.cells == yosys_cell_count(out, "shift") == min(counts)
