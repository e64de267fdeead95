"""F.scaled_dot_product_attention with is_causal=True, [B, H, S, D]."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 32
heads = 8
seq_len = 2048
head_dim = 64
SMALL = {"batch_size": 2, "heads": 2, "seq_len": 32, "head_dim": 16}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def get_inputs():
    shape = (batch_size, heads, seq_len, head_dim)
    return [torch.randn(shape), torch.randn(shape), torch.randn(shape)]


def get_init_inputs():
    return []
