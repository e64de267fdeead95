"""``optimize`` on the CPU (SMALL sizes, the harness verifying each candidate under the interpreter) of a 3-D
and two transposed convolution problems: the winner computes the convolution with the implicit-GEMM template,
its epilogue folded in, and no PyTorch convolution is left in model_new.py."""

from pathlib import Path

import pytest

from qimeng.kernels.engine.optimize import optimize

PROBLEMS = Path(__file__).parents[4] / "problems" / "conv_epilogue"


@pytest.mark.parametrize("stem, unit", [
    ("08_conv3d_bias_relu", "implicit GEMM 3x3x3, stride (1, 1, 1)"),
    ("06_conv_transpose_add_min_gelu_mul", "implicit GEMM 4x4 transposed, stride (2, 2)"),
    ("10_conv_transpose2d_grouped_dilated_silu", "implicit GEMM 3x3 transposed, stride (2, 2), padding (3, 3), "
                                                 "dilation (3, 3), groups 4"),
])
def test_optimize_keeps_the_implicit_gemm_convolution_in_the_winner(tmp_path, stem, unit):
    logs: list[str] = []
    result = optimize(PROBLEMS / f"{stem}.py", tmp_path / "out", device="cpu", budget_s=120, static=True,
                      log=logs.append)
    assert result.status == "optimized", result.first_failure
    source = (tmp_path / "out" / "model_new.py").read_text()
    report = (tmp_path / "out" / "report.md").read_text()
    assert "_qm_conv_" in source and "torch.ops.aten.convolution" not in source
    assert unit in report and "epilogue folded in" in report
    assert any("[templates]" in line and "-> accepted: verified" in line for line in logs)
