"""Scaled dot-product attention written by hand: softmax(q k^T / sqrt(d)) v over [B, H, S, D]."""

import math

import torch
import torch.nn as nn

batch_size = 16
heads = 16
seq_len = 1024
head_dim = 64
SMALL = {"batch_size": 2, "heads": 2, "seq_len": 32, "head_dim": 16}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        return torch.matmul(torch.softmax(scores, dim=-1), v)


def get_inputs():
    shape = (batch_size, heads, seq_len, head_dim)
    return [torch.randn(shape), torch.randn(shape), torch.randn(shape)]


def get_init_inputs():
    return []
