"""Mish: x * tanh(softplus(x))."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 65536
dim = 4096
SMALL = {"batch_size": 64, "dim": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.mish(x)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
