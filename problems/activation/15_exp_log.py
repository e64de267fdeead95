"""Exp and log: exp(0.5 x) + log(|x| + 1e-3)."""

import torch
import torch.nn as nn

batch_size = 128
seq_len = 2048
hidden = 1024
SMALL = {"batch_size": 2, "seq_len": 64, "hidden": 128}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(0.5 * x) + torch.log(x.abs() + 1e-3)


def get_inputs():
    return [torch.randn(batch_size, seq_len, hidden)]


def get_init_inputs():
    return []
