"""Attention by hand with a learned additive position bias per head (T5/Swin): softmax(q k^T / sqrt(d) + bias[h]) v."""

import torch
import torch.nn as nn

batch_size = 4
heads = 16
seq_len = 1024
head_dim = 64
SMALL = {"batch_size": 2, "heads": 2, "seq_len": 24, "head_dim": 16}


class Model(nn.Module):
    def __init__(self, heads: int, seq_len: int):
        super().__init__()
        self.bias = nn.Parameter(0.1 * torch.randn(heads, seq_len, seq_len))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        scores = torch.matmul(q, k.transpose(-2, -1)) * q.shape[-1] ** -0.5 + self.bias
        return torch.matmul(scores.softmax(dim=-1), v)


def get_inputs():
    shape = (batch_size, heads, seq_len, head_dim)
    return [torch.randn(shape), torch.randn(shape), torch.randn(shape)]


def get_init_inputs():
    return [heads, seq_len]
