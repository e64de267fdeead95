"""Row sums scaled by a constructor argument."""

import torch
import torch.nn as nn

rows, cols = 512, 512
SMALL = {"rows": 16, "cols": 16}


class Model(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=1) * self.scale


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return [0.5]
