"""Hardtanh: clamp to [min_val, max_val]."""

import torch
import torch.nn as nn

batch_size = 65536
dim = 4096
SMALL = {"batch_size": 64, "dim": 256}


class Model(nn.Module):
    def __init__(self, min_val: float, max_val: float):
        super().__init__()
        self.act = nn.Hardtanh(min_val, max_val)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return [-0.8, 1.2]
