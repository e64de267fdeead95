"""Half precision: fp16 batched matmul [B, M, K] @ [B, K, N] plus an fp16 residual, fp16 result."""

import torch
import torch.nn as nn

batch_size = 8
m = 4096
k = 4096
n = 4096
SMALL = {"batch_size": 2, "m": 32, "k": 64, "n": 32}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return torch.bmm(a, b) + residual


def get_inputs():
    scale = k**-0.5  # keeps the fp16 products of order 1
    return [
        torch.randn(batch_size, m, k, dtype=torch.float16),
        torch.randn(batch_size, k, n, dtype=torch.float16) * scale,
        torch.randn(batch_size, m, n, dtype=torch.float16),
    ]


def get_init_inputs():
    return []
