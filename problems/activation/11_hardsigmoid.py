"""Hardsigmoid: relu6(x + 3) / 6."""

import torch
import torch.nn as nn

batch_size = 65536
dim = 4096
SMALL = {"batch_size": 64, "dim": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
