"""Gate then reduce over dims (0, 2) of [B, C, L]: sum_{b,l} x * sigmoid(g), a per-channel result."""

import torch
import torch.nn as nn

batch_size = 256
channels = 256
length = 4096
SMALL = {"batch_size": 4, "channels": 16, "length": 128}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (x * torch.sigmoid(g)).sum(dim=(0, 2))


def get_inputs():
    shape = (batch_size, channels, length)
    return [torch.randn(shape), torch.randn(shape)]


def get_init_inputs():
    return []
