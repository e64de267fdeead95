"""F.scaled_dot_product_attention with is_causal=True in bfloat16 (PyTorch's flash-attention regime), head dim 128."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 4
heads = 16
seq_len = 4096
head_dim = 128
SMALL = {"batch_size": 2, "heads": 2, "seq_len": 24, "head_dim": 16}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def get_inputs():
    shape = (batch_size, heads, seq_len, head_dim)
    return [torch.randn(shape, dtype=torch.bfloat16) for _ in range(3)]


def get_init_inputs():
    return []
