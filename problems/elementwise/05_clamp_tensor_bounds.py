"""Clamp with per-column tensor bounds: clamp(x, -|b|, |b|), b broadcast over rows."""

import torch
import torch.nn as nn

batch_size = 32768
dim = 8192
SMALL = {"batch_size": 64, "dim": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
        limit = bound.abs()
        return torch.clamp(x, min=-limit, max=limit)


def get_inputs():
    return [torch.randn(batch_size, dim), torch.randn(dim)]


def get_init_inputs():
    return []
