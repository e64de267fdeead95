"""Templates wired into the engine (GEMM, convolution, pooling): the policy's proposals, the plan's
template units, and the emitted model_new.py run under the Triton interpreter against a float64 oracle
(one subprocess)."""

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.policies.expert import ExpertPolicy
from qimeng.kernels.engine.steps import UseTemplate, Schedule, step_from_json
from qimeng.kernels.engine.templates.conv_plan import conv_of
from qimeng.kernels.engine.templates.conv_source import Conv, default_blocks
from qimeng.kernels.engine.templates.gemm import Problem
from qimeng.kernels.engine.templates.gemm_plan import template_problem, variants
from qimeng.kernels.engine.templates.pool_plan import Pool, pool_of
from qimeng.kernels.engine.templates.strict_check import measure_strict

sys.path.insert(0, str(Path(__file__).parent))
from template_interp_check import CASES  # noqa: E402


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, interpreter):
    root = tmp_path_factory.mktemp("gemm_plan")
    lines = interpreter(Path(__file__).with_name("template_interp_check.py"), root, list(CASES), timeout=400)
    return root, {r["name"]: r for r in lines}


@pytest.mark.parametrize("name", list(CASES))
def test_model_new_with_the_template_matches_float64(outcomes, name):
    assert outcomes[1][name]["ok"], outcomes[1][name]


def test_epilogue_kernels_are_folded_where_the_product_has_one_reader(outcomes):
    results = outcomes[1]
    assert results["linear_relu_folded"]["notes"] == ["tf32x3; epilogue folded in"]
    assert results["linear_relu_folded"]["kernels"] == 0
    assert results["product_read_twice"]["kernels"] == 1  # the product is also an output: written, then read
    assert results["narrow_n_ieee"]["notes"][0].startswith("ieee")  # N = 7: memory-bound, plain fp32
    assert results["linear_bf16"]["notes"][0].startswith("bf16")


def test_convolutions_fold_their_epilogue_and_follow_the_captured_layout(outcomes):
    results = outcomes[1]
    assert results["conv_bias_relu_folded"]["notes"][0].endswith("epilogue folded in")
    assert results["conv_depthwise_then_pool"]["kernels"] == 0  # conv + sigmoid, then the pooling kernel
    assert len(results["conv_depthwise_then_pool"]["notes"]) == 2
    # a channels-last input gives a channels-last convolution: written at those strides, read apart
    assert "kept apart" in results["conv_channels_last_input_bf16"]["notes"][0]


def test_3d_and_transposed_convolutions_take_the_implicit_gemm_with_their_epilogue_folded(outcomes):
    results = outcomes[1]
    conv3d, up = results["conv3d_bias_relu_folded"], results["conv_transpose2d_stride2_bias_tanh"]
    assert conv3d["notes"][0].startswith("tf32x3; implicit GEMM 3x3x3, stride (1, 2, 2)")
    assert up["notes"][0].startswith("tf32x3; implicit GEMM 4x4 transposed, stride (2, 2)")
    assert all(r["notes"][0].endswith("epilogue folded in") and r["kernels"] == 0 for r in (conv3d, up))
    assert results["conv_transpose3d_output_padding_bf16"]["notes"][0].startswith("bf16; implicit GEMM 3x3x3 transposed")


def test_depthwise_convolutions_take_the_direct_fp32_kernel(outcomes):
    results = outcomes[1]
    for name in [n for n in CASES if n.startswith("dw_")] + ["conv_depthwise_then_pool"]:
        assert results[name]["notes"][0].startswith("ieee (fp32 FMA, whatever the TF32 flags); direct depthwise")
    assert "implicit GEMM 1x1" in results["dw_separable_block"]["notes"][1]  # the pointwise one
    assert results["dw_odd_stride2_bias_relu"]["notes"][0].endswith("pixels fast; epilogue folded in")
    assert "channels fast" in results["dw_channels_last_kept_layout"]["notes"][0]


def test_model_new_is_self_contained(outcomes):
    root, _ = outcomes
    assert not (root / "work" / "templates").exists()  # no module written beside model_new.py


def test_variants_follow_the_policy_and_the_measurement():
    square = Problem(64, 64, 512)
    assert variants("strict", square) == ["tf32x3", "ieee"]
    assert variants("strict", square, {512: "ieee"}) == ["ieee"]
    assert variants("strict", square, {256: "ieee"}) == ["tf32x3", "ieee"]
    assert variants("strict", Problem(64, 8, 512)) == ["ieee"]
    assert variants("tf32", square) == ["tf32"] and variants("bf16", square) == ["bf16"]


class _Linear(torch.nn.Module):
    def __init__(self, dtype=torch.float32):
        super().__init__()
        self.fc = torch.nn.Linear(24, 40).to(dtype)

    def forward(self, x):
        return torch.relu(self.fc(x))


def test_policy_proposes_the_template_per_variant_rank():
    graph = capture(_Linear(), [torch.randn(32, 24)])
    proposals = ExpertPolicy().propose(graph, Schedule(), "templates")
    assert [p.steps for p in proposals] == [[UseTemplate("addmm", "tf32x3")], [UseTemplate("addmm", "ieee")]]
    assert dict(proposals[0].schedule.templates) == {"addmm": "tf32x3"}
    measured = ExpertPolicy({24: "ieee"}).propose(graph, Schedule(), "templates")
    assert [p.steps for p in measured] == [[UseTemplate("addmm", "ieee")]]
    assert step_from_json(UseTemplate("addmm", "tf32x3").to_json()) == UseTemplate("addmm", "tf32x3")


def test_non_float32_products_are_not_proposed():
    graph = capture(_Linear(torch.float64), [torch.randn(32, 24, dtype=torch.float64)])
    node = graph.node("addmm")
    assert template_problem(graph, node) == "not a float32 product"
    assert ExpertPolicy().propose(graph, Schedule(), "templates") == []


def test_strict_check_measures_in_a_sandboxed_job():
    measured, error = measure_strict([40], "cpu", timeout_s=120)
    assert error == ""
    choice = measured[40]
    # the interpreter's products are float32 (TF32 is not emulated): well inside the strict tolerance
    assert choice.variant == "tf32x3" and 0 < choice.errors[0]["tol_ratio"] < 0.1


class _Convs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv3d = torch.nn.Conv3d(3, 4, 2)
        self.up = torch.nn.ConvTranspose2d(3, 4, 3, stride=2, dilation=2, output_padding=1)

    def forward(self, x, y):
        return self.conv3d(x), self.up(y), F.adaptive_avg_pool2d(y.double(), 2)  # float64: no pooling kernel


def test_3d_and_transposed_convolutions_take_the_template_adaptive_pooling_stays_a_pytorch_call():
    graph = capture(_Convs(), [torch.randn(2, 3, 4, 4, 4), torch.randn(2, 3, 5, 5)])
    conv3d, up = (n for n in graph.nodes if n.target == "aten.convolution.default")
    assert conv_of(graph, conv3d) == Conv(2, 3, (4, 4, 4), 4, (2, 2, 2), (3, 3, 3), (1, 1, 1), (0, 0, 0), (1, 1, 1), 1)
    # (5 - 1) * 2 + 2 * (3 - 1) + 1 + 1 = 14; stride 2 and dilation 2: every tap of a phase or none
    assert conv_of(graph, up) == Conv(2, 3, (5, 5), 4, (3, 3), (14, 14), (2, 2), (0, 0), (2, 2), 1, True)
    assert conv_of(graph, up).taps == (3, 3) and conv_of(graph, up).phases == 4
    pools = [n for n in graph.nodes if "pool" in n.target]
    assert pools and all(isinstance(pool_of(graph, n), str) for n in pools)
    proposed = ExpertPolicy().propose(graph, Schedule(), "templates")
    assert {s.node for p in proposed for s in p.steps} == {conv3d.name, up.name}


def test_a_float64_convolution_stays_a_pytorch_call():
    graph = capture(torch.nn.Conv3d(2, 2, 1).double(), [torch.randn(1, 2, 3, 3, 3, dtype=torch.float64)])
    conv = next(n for n in graph.nodes if n.target == "aten.convolution.default")
    assert conv_of(graph, conv) == "not float32"
    assert ExpertPolicy().propose(graph, Schedule(), "templates") == []


def test_transposed_phases_walk_only_the_taps_that_divide():
    def up(kernel, stride, dilation):
        return Conv(1, 8, (5,), 4, (kernel,), (9,), (stride,), (0,), (dilation,), 1, True)
    assert up(4, 2, 1).taps == (2,) and up(4, 2, 1).k == 16  # 2 of the 4 taps per phase
    assert up(3, 2, 1).taps == (2,)  # phases of 2 and 1 taps: the shorter one masked
    assert up(5, 3, 2).taps == (2,)  # gcd 1: m = 3
    assert up(3, 4, 2).taps == (2,)  # gcd 2: m = 2, odd phases have no tap
    assert up(3, 1, 1).taps == (3,) and up(3, 1, 1).phases == 1


def test_conv_blocks_cover_the_group_and_pool_arguments_take_their_defaults():
    graph = capture(torch.nn.MaxPool2d(3), [torch.randn(1, 2, 7, 7)])
    pool = pool_of(graph, next(n for n in graph.nodes if "pool" in n.target))
    assert pool == Pool("max", (3, 3), (3, 3), (0, 0), (1, 1))
    conv = Conv(1, 8, (5, 5), 40, (3, 3), (5, 5), (1, 1), (1, 1), (1, 1), 2)
    blocks = default_blocks(conv)
    assert conv.k == 36 and blocks.block_n == 32 and blocks.block_k == 32
