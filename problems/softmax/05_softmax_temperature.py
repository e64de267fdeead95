"""Softmax with temperature: softmax(x / T, -1) over [batch, heads, seq, seq] attention scores."""

import torch
import torch.nn as nn

batch_size = 16
heads = 16
seq_len = 1024
SMALL = {"batch_size": 1, "heads": 2, "seq_len": 64}


class Model(nn.Module):
    def __init__(self, temperature: float):
        super().__init__()
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x / self.temperature, dim=-1)


def get_inputs():
    return [torch.randn(batch_size, heads, seq_len, seq_len)]


def get_init_inputs():
    return [0.7]
