"""BatchNorm2d module in training mode, as built: batch statistics over (N, H, W), running stats updated."""

import torch
import torch.nn as nn

batch_size = 128
channels = 128
height = 128
width = 128
SMALL = {"batch_size": 4, "channels": 8, "height": 16, "width": 16}


class Model(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


def get_inputs():
    return [torch.randn(batch_size, channels, height, width) * 2.0 + 0.5]


def get_init_inputs():
    return [channels]
