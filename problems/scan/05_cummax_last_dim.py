"""Running maximum along the last dim (torch.cummax values)."""

import torch
import torch.nn as nn

rows = 16384
length = 16384
SMALL = {"rows": 64, "length": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cummax(x, dim=-1).values


def get_inputs():
    return [torch.randn(rows, length)]


def get_init_inputs():
    return []
