"""Cheat: problem_cumsum_buffer's buffer summed in bfloat16, less accurate than the fp32 reference."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("running", torch.zeros(4, 20_000))

    def forward(self, x):
        self.running.copy_(torch.cumsum(x.bfloat16(), dim=1).float())
        return x.sum(dim=1)
