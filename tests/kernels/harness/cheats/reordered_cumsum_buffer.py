"""Honest: problem_cumsum_buffer's buffer summed in another order (torch.cumsum, more accurate than the
reference's blocks)."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("running", torch.zeros(4, 20_000))

    def forward(self, x):
        self.running.copy_(torch.cumsum(x, dim=1))
        return x.sum(dim=1)
