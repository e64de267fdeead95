"""Matmul, scale and residual add: (a @ b) * scale + residual."""

import torch
import torch.nn as nn

m = 4096
k = 4096
n = 4096
SMALL = {"m": 64, "k": 128, "n": 64}


class Model(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, a: torch.Tensor, b: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b) * self.scale + residual


def get_inputs():
    return [torch.randn(m, k), torch.randn(k, n), torch.randn(m, n)]


def get_init_inputs():
    return [0.125]
