"""Sum of every element (0-d result)."""

import torch
import torch.nn as nn

batch_size = 256
rows = 4096
cols = 1024
SMALL = {"batch_size": 4, "rows": 64, "cols": 64}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum()


def get_inputs():
    return [torch.randn(batch_size, rows, cols)]


def get_init_inputs():
    return []
