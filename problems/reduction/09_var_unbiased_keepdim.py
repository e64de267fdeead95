"""Unbiased variance over the last dim, keepdim."""

import torch
import torch.nn as nn

rows = 32768
cols = 8192
SMALL = {"rows": 64, "cols": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.var(x, dim=-1, keepdim=True, correction=1)


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return []
