"""Two-sided diagonal scaling written as products (matrix equilibration): diag(r) @ A @ diag(c)."""

import torch
import torch.nn as nn

m = 8192
n = 8192
SMALL = {"m": 64, "n": 96}


class Model(nn.Module):
    def forward(self, a: torch.Tensor, r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.diag(r) @ a @ torch.diag(c)


def get_inputs():
    return [torch.randn(m, n), torch.rand(m) + 0.5, torch.rand(n) + 0.5]


def get_init_inputs():
    return []
