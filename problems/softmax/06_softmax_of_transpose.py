"""Softmax over the last dim of a transposed (non-contiguous) view: softmax(x.transpose(1, 2), -1)."""

import torch
import torch.nn as nn

batch_size = 128
seq_len = 2048
features = 1024
SMALL = {"batch_size": 2, "seq_len": 64, "features": 128}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x.transpose(1, 2), dim=-1)


def get_inputs():
    return [torch.randn(batch_size, seq_len, features)]


def get_init_inputs():
    return []
