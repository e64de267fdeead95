"""Causal attention by hand: scores above the diagonal masked to -inf before the softmax, [B, H, S, D]."""

import math

import torch
import torch.nn as nn

batch_size = 8
heads = 16
seq_len = 2048
head_dim = 64
SMALL = {"batch_size": 2, "heads": 2, "seq_len": 32, "head_dim": 16}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        seq = q.shape[-2]
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        future = torch.ones(seq, seq, dtype=torch.bool, device=q.device).triu(diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), v)


def get_inputs():
    shape = (batch_size, heads, seq_len, head_dim)
    return [torch.randn(shape), torch.randn(shape), torch.randn(shape)]


def get_init_inputs():
    return []
