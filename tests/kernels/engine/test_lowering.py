"""Lowering graph groups to kernel IR: views are index arithmetic, spaces must agree, fusion is legal."""

import pytest
import torch
import torch.nn as nn

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.ir.expr import Load, walk
from qimeng.kernels.engine.lowering import LoweringError, lower_group
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.policies.expert import ExpertPolicy
from qimeng.kernels.engine.steps import Schedule


def _graph(fn, *inputs, **modules):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            for name, module in modules.items():
                setattr(self, name, module)

        def forward(self, *args):
            return fn(self, *args)

    return capture(M(), list(inputs))


def _loads(kernel):
    return [e for s in kernel.stores for e in walk(s.value) if isinstance(e, Load)]


def test_permute_and_slice_become_strides_not_copies():
    g = _graph(lambda m, x: x.permute(1, 0)[2:5] * 2, torch.randn(4, 8))
    kernel = lower_group(g, {n.name for n in g.nodes}, "k", {})
    (load,) = _loads(kernel)
    out_vars = kernel.parallel
    # out[i, j] = x[j, i + 2]: stride 1 along i, 8 along j, offset 2
    assert load.index.coeff(out_vars[0]) == 1 and load.index.coeff(out_vars[1]) == 8 and load.index.const == 2


def test_reductions_of_different_spaces_do_not_share_a_kernel():
    g = _graph(lambda m, x: x.sum(dim=1, keepdim=True) + x.sum(dim=0), torch.randn(4, 4))
    names = {n.name for n in g.nodes}
    with pytest.raises(LoweringError):
        lower_group(g, names, "k", {})


def test_softmax_fuses_into_one_reduction_kernel_with_two_reductions():
    g = _graph(lambda m, x: torch.softmax(x, dim=-1), torch.randn(3, 10))
    kernel = lower_group(g, {n.name for n in g.nodes}, "k", {})
    assert [r.op for r in kernel.reductions] == ["max", "sum"]
    assert kernel.reduce_size == 10 and kernel.parallel_size == 3 and len(kernel.stores) == 1


def test_expert_plan_keeps_gemm_as_a_call_and_fuses_its_epilogue():
    g = _graph(lambda m, x: torch.relu(m.lin(x)) * 3 + 1, torch.randn(2, 6), lin=nn.Linear(6, 5))
    policy, schedule = ExpertPolicy(), Schedule()
    for stage in ("lower", "reduce"):
        for proposal in policy.propose(g, schedule, stage)[:1]:
            schedule = proposal.schedule
    plan = build_plan(g, schedule)
    assert "addmm" in plan.fallbacks and len(plan.kernels) == 1
    assert {"relu", "mul", "add"} <= set(plan.kernels[0].kernel.ops)


def test_plain_tensor_attributes_are_inputs_read_through_their_attribute_path():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.randn(6)  # neither a parameter nor a buffer

        def forward(self, x):
            return x * self.scale

    g = capture(Scaled(), [torch.randn(2, 6)])
    assert [(i.kind, i.target) for i in g.inputs if i.kind != "user"] == [("constant", "scale")]
