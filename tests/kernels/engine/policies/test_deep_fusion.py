"""The fusion stages on a deep network (a DenseNet-style stack in training mode): the generated kernels
compute what the float64 reference does, the proposals are what their steps applied one by one make,
and the work of the stages grows linearly with the depth (a count of Python calls, not a clock)."""

from __future__ import annotations

import cProfile
import pstats

import torch

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.policies.expert import ExpertPolicy, node_order
from qimeng.kernels.engine.render import render_schedule
from qimeng.kernels.engine.steps import Schedule
from training_check import run_cases  # noqa: E402  (tests/kernels/engine's subprocess checker)

DENSE = '''
class DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 2 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * growth)
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        y = self.conv1(F.relu(self.bn1(x)))
        y = self.conv2(F.relu(self.bn2(y)))
        return torch.cat([x, y], dim=1)


class Model(nn.Module):
    def __init__(self, layers=LAYERS, growth=3):
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.layers = nn.Sequential(*[DenseLayer(4 + k * growth, growth) for k in range(layers)])
        self.bn = nn.BatchNorm2d(4 + layers * growth)

    def forward(self, x):
        return F.relu(self.bn(self.layers(self.stem(x)))).mean(dim=(2, 3))

def get_inputs():
    return [torch.randn(2, 2, 5, 5)]
'''
FUSION_STAGES = ("lower", "reduce", "siblings")


def dense_model(layers: int) -> torch.nn.Module:
    scope = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional}
    exec(DENSE.replace("LAYERS", str(layers)), scope)
    return scope["Model"]()


def test_a_deep_dense_network_matches_the_float64_reference(tmp_path, interpreter):
    r = run_cases(interpreter, tmp_path, {"dense6": DENSE.replace("LAYERS", "6")})["dense6"]
    assert "error" not in r, r
    assert r["kernels"] >= 6 and r["kernel_calls"] >= 3 * r["kernels"], r  # the generated kernels ran
    assert r["out_err"] <= 2 * r["ref_err"] + 1e-5, r  # as close to the float64 result as PyTorch is
    assert r["buffer_diff"] <= 1e-5, r  # running statistics as PyTorch updates them


def test_each_fusion_proposal_is_its_steps_applied_one_by_one():
    torch.manual_seed(0)
    graph = capture(dense_model(4).train(), [torch.randn(2, 2, 5, 5)])
    order = node_order(graph)
    policy, schedule = ExpertPolicy(), Schedule()
    for stage in FUSION_STAGES:
        for proposal in policy.propose(graph, schedule, stage):
            replayed = schedule
            for step in proposal.steps:
                replayed = step.apply(replayed, order)
            assert replayed == proposal.schedule, stage
            schedule = proposal.schedule
    assert len(schedule.groups) >= 8  # the stack fused into kernels, not one group or none


def _stage_calls(layers: int) -> int:
    """Python calls made by the fusion stages and the rendering of their candidates at ``layers``."""
    torch.manual_seed(0)
    model = dense_model(layers).train()
    graph = capture(model, [torch.randn(2, 2, 5, 5)])
    policy, schedule = ExpertPolicy(), Schedule()
    profile = cProfile.Profile()
    profile.enable()
    for stage in FUSION_STAGES:
        for proposal in policy.propose(graph, schedule, stage)[:1]:
            schedule = proposal.schedule
            render_schedule(DENSE, type(model), graph, schedule, "cpu")
    profile.disable()
    return pstats.Stats(profile).total_calls


def test_the_fusion_stages_work_grows_linearly_with_depth():
    ratio = _stage_calls(32) / _stage_calls(16)
    # twice the layers: 1.97x the calls (a merge that rebuilt the schedule and a lowering that scanned
    # the graph, as before: 2.69x, growing with the depth)
    assert ratio < 2.3, ratio
