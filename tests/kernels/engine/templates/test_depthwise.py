"""The direct depthwise convolution: which convolutions it takes, in which precision and tile, and an optimize
run of a depthwise-separable block on the CPU whose winner computes the depthwise convolution with it (its
outputs against float64 are checked in template_interp_check.py's ``dw_*`` cases)."""

from pathlib import Path

import pytest
import torch

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.optimize import optimize
from qimeng.kernels.engine.templates.conv_source import Conv
from qimeng.kernels.engine.templates.depthwise_plan import depthwise_of
from qimeng.kernels.engine.templates.depthwise_source import default_blocks, depthwise_source
from qimeng.kernels.engine.templates.epilogue import Epilogue
from qimeng.kernels.engine.templates.plan import template_ks, template_variants

REPO = Path(__file__).parents[4]
SEPARABLE = REPO / "problems" / "cnn" / "04_depthwise_separable_block.py"


class _Convs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.depthwise = torch.nn.Conv2d(6, 12, 3, groups=6)
        self.grouped = torch.nn.Conv2d(6, 6, 3, groups=3)

    def forward(self, x):
        return self.depthwise(x), self.grouped(x)


def _graph():
    graph = capture(_Convs(), [torch.randn(1, 6, 9, 9)])
    depthwise, grouped = (n for n in graph.nodes if n.target == "aten.convolution.default")
    return graph, depthwise, grouped


@pytest.mark.parametrize("policy", ["strict", "tf32", "bf16"])
def test_depthwise_runs_fp32_fma_under_every_policy_grouped_stays_implicit_gemm(policy):
    graph, depthwise, grouped = _graph()
    assert isinstance(depthwise_of(graph, depthwise), Conv)
    assert depthwise_of(graph, grouped) == "not a depthwise convolution"
    assert template_variants(graph, depthwise, policy) == ["ieee"]
    # the grouped one follows the policy (strict: plain fp32, its 2 channels per group being too narrow)
    assert template_variants(graph, grouped, policy) == {"strict": ["ieee"], "tf32": ["tf32"], "bf16": ["bf16"]}[policy]


def test_strict_measures_no_k_for_the_depthwise_kernel():
    graph, _, _ = _graph()
    assert template_ks(graph) == [3 * 3 * 2]  # the grouped convolution's K only


def test_the_tile_runs_along_the_inputs_contiguous_axis():
    conv = Conv(2, 256, (112, 112), 256, (3, 3), (112, 112), (1, 1), (1, 1), (1, 1), 256)
    nchw = default_blocks(conv, (256 * 112 * 112, 112 * 112, 112, 1))
    channels_last = default_blocks(conv, (256 * 112 * 112, 1, 112 * 256, 256))
    assert (nchw.channels_fast, nchw.block_c, nchw.block_p) == (False, 4, 512)
    assert (channels_last.channels_fast, channels_last.block_c, channels_last.block_p) == (True, 64, 32)
    small = Conv(1, 3, (4, 5), 6, (3, 3), (2, 3), (1, 1), (0, 0), (1, 1), 3)
    assert default_blocks(small, (60, 20, 5, 1)).block_p == 8  # one block of the 6 output pixels


def test_a_grouped_convolution_is_refused_by_the_source():
    conv = Conv(1, 6, (9, 9), 6, (3, 3), (7, 7), (1, 1), (0, 0), (1, 1), 3)
    with pytest.raises(ValueError, match="not a depthwise convolution"):
        depthwise_source("k", conv, (486, 81, 9, 1), (18, 9, 3, 1), (294, 49, 7, 1),
                         default_blocks(conv, (486, 81, 9, 1)), Epilogue(), "float32")


def test_optimize_keeps_the_direct_depthwise_kernel_in_the_winner(tmp_path):
    logs: list[str] = []
    result = optimize(SEPARABLE, tmp_path / "out", device="cpu", budget_s=120, static=True, log=logs.append)
    assert result.status == "optimized", result.first_failure
    source = (tmp_path / "out" / "model_new.py").read_text()
    report = (tmp_path / "out" / "report.md").read_text()
    assert "_qm_dwconv_" in source and "torch.ops.aten.convolution" not in source
    assert "ieee (fp32 FMA, whatever the TF32 flags); direct depthwise 3x3, multiplier 2" in report
    assert any("[templates]" in line and "-> accepted: verified" in line for line in logs)
