"""Depthwise 3x3 Conv2d (groups = channels) followed by exact GELU."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 32
channels = 128
height = 112
width = 112
SMALL = {"batch_size": 2, "channels": 8, "height": 16, "width": 16}


class Model(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.conv(x))


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [channels]
