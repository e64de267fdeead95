"""Unary math chain: sin(x) * cos(x) + sqrt(|x|) - exp(-x^2)."""

import torch
import torch.nn as nn

batch_size = 32768
dim = 8192
SMALL = {"batch_size": 64, "dim": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x) * torch.cos(x) + torch.sqrt(x.abs()) - torch.exp(-x * x)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
