"""Lower triangle of a matmul product: tril(a @ b), as in a causal score matrix without the softmax."""

import torch
import torch.nn as nn

m = 4096
k = 4096
n = 4096
SMALL = {"m": 160, "k": 64, "n": 160}


class Model(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.tril(torch.matmul(a, b))


def get_inputs():
    return [torch.randn(m, k), torch.randn(k, n)]


def get_init_inputs():
    return []
