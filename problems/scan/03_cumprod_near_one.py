"""Inclusive prefix product along the last dim of values near 1 (1 + 0.001 * noise): no under/overflow."""

import torch
import torch.nn as nn

rows = 16384
length = 16384
SMALL = {"rows": 64, "length": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumprod(x, dim=-1)


def get_inputs():
    return [1.0 + 0.001 * torch.randn(rows, length)]


def get_init_inputs():
    return []
