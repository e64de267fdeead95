"""Batched matmul: bmm of [B, M, K] and [B, K, N]."""

import torch
import torch.nn as nn

batch_size = 16
m = 2048
k = 1024
n = 2048
SMALL = {"batch_size": 2, "m": 32, "k": 64, "n": 32}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.bmm(a, b)


def get_inputs():
    return [torch.randn(batch_size, m, k), torch.randn(batch_size, k, n)]


def get_init_inputs():
    return []
