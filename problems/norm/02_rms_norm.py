"""RMS norm written by hand: x / sqrt(mean(x^2, -1) + eps) * weight, over [batch, seq, hidden]."""

import torch
import torch.nn as nn

batch_size = 128
seq_len = 2048
hidden = 4096
SMALL = {"batch_size": 2, "seq_len": 32, "hidden": 256}


class Model(nn.Module):
    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean_square = x.pow(2).mean(dim=-1, keepdim=True)
        return x / torch.sqrt(mean_square + self.eps) * self.weight


def get_inputs():
    return [torch.randn(batch_size, seq_len, hidden)]


def get_init_inputs():
    return [hidden, 1e-6]
