"""x @ w^T (w given as [N, K], used transposed) + bias, then SiLU: functional linear by hand."""

import torch
import torch.nn as nn
import torch.nn.functional as F

m = 8192
k = 2048
n = 4096
SMALL = {"m": 64, "k": 128, "n": 64}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return F.silu(x @ weight.t() + bias)


def get_inputs():
    return [torch.randn(m, k), torch.randn(n, k) / k**0.5, torch.randn(n)]


def get_init_inputs():
    return []
