"""Type promotion with broadcasting: (fp16 x[B, S, D] + fp32 y[D]) * 0.5, result fp32."""

import torch
import torch.nn as nn

batch_size = 256
seq_len = 2048
dim = 1024
SMALL = {"batch_size": 2, "seq_len": 32, "dim": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x + y) * 0.5


def get_inputs():
    return [torch.randn(batch_size, seq_len, dim, dtype=torch.float16), torch.randn(dim)]


def get_init_inputs():
    return []
