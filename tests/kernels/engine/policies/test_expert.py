"""The expert policy's strategy stage (alternatives for the largest reductions only: MAX_STRATEGY_KERNELS) and
its graph stage (a CUDA graph where the forward launches enough and draws nothing random)."""

from __future__ import annotations

import torch

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.policies.expert import MAX_STRATEGY_KERNELS, ExpertPolicy
from qimeng.kernels.engine.steps import Schedule


class ManySums(torch.nn.Module):
    """Independent row sums of inputs of growing width: one reduction kernel each."""

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(x.sum(dim=-1) for x in xs)


def test_strategy_alternatives_go_to_the_reductions_that_move_the_most_bytes():
    count = MAX_STRATEGY_KERNELS + 3
    xs = [torch.randn(4, 64 * (k + 1)) for k in range(count)]  # the k-th input moves k + 1 units of bytes
    graph = capture(ManySums(), xs)
    policy = ExpertPolicy()
    schedule = policy.main_line(graph, Schedule(), through="templates")
    proposals = policy.propose(graph, schedule, "strategy")
    heads = {p.steps[0].kernel for p in proposals}
    sums = [n.name for n in graph.nodes if n.target.startswith("aten.sum")]
    assert len(sums) == count
    assert heads == set(sums[count - MAX_STRATEGY_KERNELS:])  # the widest inputs' sums, none of the three narrowest


class LinearReluSum(torch.nn.Module):
    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(16, 16)
        self.drop = torch.nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(torch.relu(self.fc(x))).sum(dim=-1)


def test_the_graph_stage_wraps_the_main_line_only_where_cuda_graphs_exist_and_nothing_is_random():
    graph = capture(LinearReluSum(), [torch.randn(8, 16)])
    on_gpu = ExpertPolicy(cuda_graphs=True)
    schedule = on_gpu.main_line(graph, Schedule(), through="strategy")
    proposal, vendor = on_gpu.propose(graph, schedule, "graph")  # the linear is a template's: also without it
    assert proposal.schedule.cuda_graph and proposal.steps[0].kind == "cuda_graph"
    assert proposal.schedule.groups == schedule.groups and not schedule.cuda_graph
    assert schedule.templates and proposal.schedule.templates == schedule.templates
    assert vendor.schedule.cuda_graph and not vendor.schedule.templates and vendor.schedule.groups == schedule.groups
    assert on_gpu.propose(graph, proposal.schedule, "graph") == []  # once
    assert ExpertPolicy().propose(graph, schedule, "graph") == []  # on the CPU: no CUDA graphs
    random = capture(LinearReluSum(0.5), [torch.randn(8, 16)])  # training mode: dropout draws numbers
    assert on_gpu.propose(random, on_gpu.main_line(random, Schedule(), through="strategy"), "graph") == []


def test_a_forward_of_one_launch_gets_no_graph():
    graph = capture(torch.nn.ReLU(), [torch.randn(8, 16)])
    policy = ExpertPolicy(cuda_graphs=True)
    schedule = policy.main_line(graph, Schedule(), through="strategy")
    assert len(schedule.groups) == 1 and policy.propose(graph, schedule, "graph") == []


class HiddenOfGRU(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = torch.nn.GRU(4, 8, num_layers=2, batch_first=True)

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        return self.gru(x, h0)[1]


def test_a_recurrent_stack_alone_gets_a_graph():
    """One ``aten.gru`` call (more steps than the capture unrolls): cuDNN launches its steps one by one."""
    graph = capture(HiddenOfGRU(), [torch.randn(2, 40, 4), torch.randn(2, 2, 8)])  # 40 steps x 2 layers
    assert [n.target for n in graph.nodes if n.target.startswith("aten.")] == ["aten.gru.input"]
    policy = ExpertPolicy(cuda_graphs=True)
    schedule = policy.main_line(graph, Schedule(), through="strategy")
    (proposal,) = policy.propose(graph, schedule, "graph")
    assert proposal.schedule.cuda_graph and not proposal.schedule.groups
