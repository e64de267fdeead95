"""Leaky ReLU with a negative slope."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 128
seq_len = 2048
hidden = 1024
SMALL = {"batch_size": 2, "seq_len": 64, "hidden": 128}


class Model(nn.Module):
    def __init__(self, negative_slope: float):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope)


def get_inputs():
    return [torch.randn(batch_size, seq_len, hidden)]


def get_init_inputs():
    return [0.1]
