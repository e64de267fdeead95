"""Sum over dim 1 of a 3-D tensor, keepdim."""

import torch
import torch.nn as nn

batch_size = 64
rows = 4096
cols = 1024
SMALL = {"batch_size": 4, "rows": 64, "cols": 64}


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x, dim=self.dim, keepdim=True)


def get_inputs():
    return [torch.randn(batch_size, rows, cols)]


def get_init_inputs():
    return [1]
