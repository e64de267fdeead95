"""Suffix (reverse) sum along the last dim: flip, cumsum, flip, as in discounted-return style scans."""

import torch
import torch.nn as nn

rows = 32768
length = 8192
SMALL = {"rows": 64, "length": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flip(torch.cumsum(torch.flip(x, dims=[-1]), dim=-1), dims=[-1])


def get_inputs():
    return [torch.randn(rows, length)]


def get_init_inputs():
    return []
