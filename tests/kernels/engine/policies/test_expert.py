"""The expert policy's strategy stage: alternatives for the largest reductions only (MAX_STRATEGY_KERNELS)."""

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
