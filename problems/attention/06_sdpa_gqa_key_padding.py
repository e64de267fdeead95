"""F.scaled_dot_product_attention, grouped-query heads (32 over 8), a key-padding mask from lengths, head dim 128."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 2
heads = 32
kv_heads = 8
seq_len = 4096
head_dim = 128
SMALL = {"batch_size": 2, "heads": 4, "kv_heads": 2, "seq_len": 24, "head_dim": 16}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        keep = torch.arange(k.shape[-2], device=k.device) < lengths[:, None]  # [B, S]: the sequence's own keys
        return F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :], enable_gqa=True)


def get_inputs():
    lengths = torch.randint(seq_len // 2, seq_len + 1, (batch_size,))
    return [torch.randn(batch_size, heads, seq_len, head_dim), torch.randn(batch_size, kv_heads, seq_len, head_dim),
            torch.randn(batch_size, kv_heads, seq_len, head_dim), lengths]


def get_init_inputs():
    return []
