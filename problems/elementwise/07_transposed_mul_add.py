"""Non-contiguous operand: x * y^T + y^T, where y is given transposed ([N, M] vs [M, N])."""

import torch
import torch.nn as nn

rows = 65536
cols = 4096
SMALL = {"rows": 128, "cols": 64}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        yt = y.t()
        return x * yt + yt


def get_inputs():
    return [torch.randn(rows, cols), torch.randn(cols, rows)]


def get_init_inputs():
    return []
