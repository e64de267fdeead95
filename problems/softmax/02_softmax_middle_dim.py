"""Softmax over dim 1 (a strided, non-innermost dim) of [batch, classes, length]."""

import torch
import torch.nn as nn

batch_size = 256
classes = 256
length = 4096
SMALL = {"batch_size": 4, "classes": 32, "length": 64}


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.softmax = nn.Softmax(dim=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(x)


def get_inputs():
    return [torch.randn(batch_size, classes, length)]


def get_init_inputs():
    return [1]
