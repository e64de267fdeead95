"""End to end on the CPU: ``optimize`` of problems/gemm_epilogue/07 (linear + GELU, then the row mean) ends with
the GEMM template computing the mean (the [M, N] product never written) in the winner, verified by the harness
under the Triton interpreter; the written model_new.py is then run against the float64 Model at its SMALL sizes."""

import sys
from pathlib import Path

import pytest

from qimeng.kernels.engine.optimize import optimize

sys.path.insert(0, str(Path(__file__).parent))
from test_pool_optimize import float64_check  # noqa: E402

PROBLEM = Path(__file__).parents[4] / "problems" / "gemm_epilogue" / "07_linear_gelu_row_mean.py"


@pytest.fixture(scope="module")
def optimized(tmp_path_factory):
    out = tmp_path_factory.mktemp("gemm_fusion_optimize") / "row_mean"
    logs: list[str] = []
    return optimize(PROBLEM, out, device="cpu", budget_s=200, static=True, log=logs.append), out, logs


def test_the_winner_reduces_the_rows_in_the_template(optimized):
    result, out, logs = optimized
    assert result.status == "optimized", (result.first_failure, logs[-5:])
    source = (out / "model_new.py").read_text()
    assert "_rows, " in source and "addmm.default(" not in source
    assert "row sum over N folded in" in (out / "report.md").read_text()
    assert any("[templates] 0 kernels" in line and "-> accepted" in line for line in logs)


def test_model_new_matches_the_float64_model(optimized, tmp_path):
    checked = float64_check(optimized[1], tmp_path)
    assert checked["shapes"] == [[64, 1]] and checked["ratio"] <= 1.0, checked
