"""Inclusive prefix sum along dim 1 (strided) of [batch, seq, features]."""

import torch
import torch.nn as nn

batch_size = 128
seq_len = 4096
features = 512
SMALL = {"batch_size": 2, "seq_len": 128, "features": 64}


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x, dim=self.dim)


def get_inputs():
    return [torch.randn(batch_size, seq_len, features)]


def get_init_inputs():
    return [1]
