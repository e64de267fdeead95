"""Sigmoid."""

import torch
import torch.nn as nn

batch_size = 128
channels = 64
height = 256
width = 128
SMALL = {"batch_size": 2, "channels": 4, "height": 32, "width": 32}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return []
