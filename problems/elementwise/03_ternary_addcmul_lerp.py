"""Ternary ops: lerp(addcmul(x, y, z, value=0.5), z, 0.25)."""

import torch
import torch.nn as nn

batch_size = 32768
dim = 8192
SMALL = {"batch_size": 32, "dim": 512}


class Model(nn.Module):
    def __init__(self, value: float, weight: float):
        super().__init__()
        self.value = value
        self.weight = weight

    def forward(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.lerp(torch.addcmul(x, y, z, value=self.value), z, self.weight)


def get_inputs():
    return [torch.randn(batch_size, dim), torch.randn(batch_size, dim), torch.randn(batch_size, dim)]


def get_init_inputs():
    return [0.5, 0.25]
