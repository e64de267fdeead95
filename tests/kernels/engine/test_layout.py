"""Channels-last layout (``ChannelsLast``, ``layout.py``): the policy proposes it for graphs with 2-D
convolutions; the emitted model_new.py runs its convolutions on NHWC operands (weights converted once),
its kernels read and write NHWC between them, returns the reference's layout, and matches a float64
oracle at 1e-4 under the Triton interpreter (``layout_check.py``, one subprocess)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.layout import channels_last_convs, nhwc_strides
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.optimize import optimize
from qimeng.kernels.engine.policies.expert import ExpertPolicy
from qimeng.kernels.engine.steps import ChannelsLast, Schedule, UseTemplate, step_from_json

sys.path.insert(0, str(Path(__file__).parent))
from layout_check import CASES, main_line  # noqa: E402

ROOT = Path(__file__).parents[3]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT), "QIMENG_WORK_DIR": str(root / "work")}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("layout_check.py")), json.dumps(list(CASES))],
                          capture_output=True, text=True, env=env, timeout=400, cwd=root)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(CASES), proc.stderr[-3000:]
    return {r["name"]: r for r in lines}


@pytest.mark.parametrize("name", list(CASES))
def test_channels_last_model_new_matches_float64_in_the_reference_layout(results, name):
    r = results[name]
    assert r["ok"], r
    assert r["out_strides"] == r["ref_strides"]  # the graph outputs come back in the reference's layout
    assert r["convs"] and all(all(flags) for flags in r["convs"])  # input, weight and output NHWC in every call
    assert r["cached_channels_last"] and len(r["cached_weights"]) == len(r["convs"])


def test_kernels_follow_the_nhwc_strides(results):
    r = results["conv_bias_relu"]  # x [2, 4, 11, 13] -> conv [2, 8, 11, 13]: NHWC read, NCHW output written
    assert r["kernel_strides"]["convolution"] == list(nhwc_strides((2, 8, 11, 13)))
    assert r["kernel_strides"]["relu"] == [8 * 11 * 13, 11 * 13, 13, 1]
    two = results["two_convs"]  # the relu between the convolutions stays NHWC: conv2 reads it without a copy
    assert two["nhwc"]["relu"] == list(nhwc_strides((2, 6, 9, 10)))
    returned = results["two_convs_intermediate_returned"]  # returned as well: written in the reference's layout
    assert "relu" not in returned["nhwc"]


def test_training_batch_norm_runs_its_statistics_over_the_nhwc_conv_output(results):
    r = results["conv_bn_relu_train_split"]
    assert "split" in r["strategies"]  # the split Welford kernel, its channel rows innermost
    assert r["kernel_strides"]["convolution"] == list(nhwc_strides((3, 8, 37, 29)))
    between = results["conv_bn_relu_conv_train_split"]  # normalised, then read by a convolution: written NHWC
    assert "split" in between["strategies"] and between["nhwc"]["relu"] == list(nhwc_strides((3, 8, 37, 29)))


class _ConvPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x)).flatten(1)  # a view reads the kernel's output: it stays contiguous


def _graph(module, *shapes):
    return capture(module, [torch.randn(*s) for s in shapes])


def test_the_policy_proposes_channels_last_only_for_2d_convolutions():
    conv = _graph(_ConvPool(), (2, 3, 8, 8))
    assert channels_last_convs(conv) == ["convolution"]
    proposals = ExpertPolicy().propose(conv, Schedule(), "layout")
    assert [p.steps for p in proposals] == [[ChannelsLast(("convolution",))]]
    conv1d = _graph(nn.Conv1d(3, 4, 3), (2, 3, 8))
    assert ExpertPolicy().propose(conv1d, Schedule(), "layout") == []
    step = ChannelsLast(("convolution",))
    assert step_from_json(json.loads(json.dumps(step.to_json()))) == step


def test_values_read_by_pytorch_calls_and_templated_convolutions_keep_their_layout():
    graph = _graph(_ConvPool(), (2, 3, 8, 8))
    plan = build_plan(graph, main_line(graph))
    assert plan.channels_last == {"convolution"}
    assert plan.strides == {"convolution": nhwc_strides((2, 4, 8, 8))}  # relu: read by a view, contiguous
    templated = UseTemplate("convolution", "ieee").apply(main_line(graph), {})
    assert build_plan(graph, templated).channels_last == frozenset()  # our template is no vendor call


@pytest.mark.parametrize("problem", ["conv_epilogue/01_conv2d_bias_relu.py", "training/04_conv_bn_relu_train.py"])
def test_optimize_verifies_the_channels_last_candidate_through_the_harness(tmp_path, problem):
    logs: list[str] = []
    result = optimize(ROOT / "problems" / problem, tmp_path / "out", device="cpu", budget_s=120, log=logs.append)
    layout = [c for c in result.candidates if c["stage"] == "layout"]
    assert len(layout) == 1 and layout[0]["status"] == "ok", (layout, logs)
    assert any(line.startswith("[layout]") and "channels_last(convs=('convolution',))" in line for line in logs)


def test_a_convolution_read_only_by_the_next_convolution_stays_nhwc():
    graph = _graph(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 5, 1), nn.ReLU()), (2, 3, 9, 9))
    plan = build_plan(graph, main_line(graph))
    assert plan.channels_last == {"convolution", "convolution_1"}
    assert plan.strides == {"convolution": nhwc_strides((2, 4, 7, 7)), "convolution_1": nhwc_strides((2, 5, 7, 7))}
