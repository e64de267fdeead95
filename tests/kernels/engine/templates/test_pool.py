"""Pooling kernels of the engine: every pooling op torch.export gives (1-D to 3-D, fixed and adaptive windows,
indices) run under the Triton interpreter against float64 PyTorch (two subprocesses), the pointwise kernel
before a pooling folded into it (split from a training batch norm's statistics), and the argument parsing
against hand-computed values."""

import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.templates.pool_plan import pool_of
from qimeng.kernels.engine.templates.pool_source import Pool, adaptive_width

sys.path.insert(0, str(Path(__file__).parent))
from pool_interp_check import CASES  # noqa: E402

FUSED = "the pointwise kernel before it computed at each tap"


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, interpreter):
    root = tmp_path_factory.mktemp("pool")
    lines = interpreter(Path(__file__).with_name("pool_interp_check.py"), root, list(CASES), processes=2, timeout=500)
    return {r["name"]: r for r in lines}


@pytest.mark.parametrize("name", list(CASES))
def test_pooling_kernel_matches_float64_and_indices_are_exact(outcomes, name):
    assert outcomes[name]["ok"], outcomes[name]
    assert all("pooling kernel" in note for note in outcomes[name]["notes"] if "implicit GEMM" not in note)


# a transposed convolution is the implicit-GEMM template's now: its epilogue takes the pointwise chain
@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("fused_") and "_train_" not in n
                                  and "conv_transpose" not in n])
def test_the_pointwise_kernel_before_a_pooling_is_computed_in_it(outcomes, name):
    assert outcomes[name]["notes"][-1].endswith(FUSED) and outcomes[name]["kernels"] == 0


@pytest.mark.parametrize("name, channels", [("fused_train_conv_bn_relu_maxpool", 8),
                                            ("fused_train_conv3d_bn_relu_avgpool", 4)])
def test_training_batch_norm_keeps_its_statistics_kernel_and_the_pooling_normalises(outcomes, name, channels):
    assert outcomes[name]["notes"][-1].endswith(FUSED + " (split from its reduction)")
    assert max(outcomes[name]["kernel_output_sizes"]) <= channels  # statistics, running stats: no activation


def test_an_activation_read_elsewhere_or_taken_by_the_conv_template_is_not_refolded(outcomes):
    assert outcomes["not_fused_activation_also_returned"]["kernels"] == 1
    assert "an output of the forward" in outcomes["not_fused_activation_also_returned"]["notes"][0]
    kept = outcomes["reduction_reading_its_full_size_part_kept_whole"]
    assert "the reduction kernel writes more than" in kept["notes"][0] and kept["kernels"] == 1
    conv, pool = outcomes["conv2d_bn_relu_maxpool_template"]["notes"]
    assert conv.endswith("epilogue folded in") and "not written by a kernel" in pool


def _pool(module, shape) -> Pool | str:
    graph = capture(module, [torch.randn(*shape)])
    return pool_of(graph, next(n for n in graph.nodes if "pool" in n.target))


def test_arguments_of_every_pooling_op_are_read():
    assert _pool(nn.MaxPool3d((3, 2, 1), 2, (1, 0, 0), dilation=(1, 2, 1)), (1, 2, 7, 7, 7)) == Pool(
        "max", (3, 2, 1), (2, 2, 2), (1, 0, 0), (1, 2, 1))
    assert _pool(nn.MaxPool1d(3, dilation=2), (1, 2, 11)) == Pool("max", (1, 3), (1, 3), (0, 0), (1, 2))
    assert _pool(nn.AvgPool3d(2, 1, 1, count_include_pad=False, divisor_override=3), (1, 2, 5, 5, 5)) == Pool(
        "avg", (2, 2, 2), (1, 1, 1), (1, 1, 1), (1, 1, 1), count_include_pad=False, divisor=3)
    assert _pool(nn.AdaptiveMaxPool2d((3, 2)), (2, 9, 8)) == Pool("max", (), (), (), (), output_size=(3, 2))
    assert _pool(nn.AdaptiveAvgPool3d(2), (1, 1, 5, 6, 7)) == Pool("avg", (), (), (), (), output_size=(2, 2, 2))


def test_what_no_pooling_kernel_takes_says_why():
    assert _pool(_Double(), (1, 2, 6, 6)) == ("input [1, 2, 6, 6] float64: a 3-D or 4-D float32/float16/bfloat16 "
                                              "tensor is needed")


class _Double(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x.double(), 2)


def test_adaptive_windows_are_the_widest_of_floor_and_ceil_bounds():
    # 10 -> 4: windows [0,3) [2,5) [5,8) [7,10): width 3; 4 -> 5 (upsampling): [0,1) [0,2) [1,3) [2,4) [3,4)
    assert adaptive_width(10, 4) == 3 and adaptive_width(4, 5) == 2 and adaptive_width(7, 7) == 1
