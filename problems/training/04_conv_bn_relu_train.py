"""Conv2d (no bias) + BatchNorm2d + ReLU in training mode, as built (a ResNet stem layer being trained)."""

import torch
import torch.nn as nn

batch_size = 64
in_channels = 64
out_channels = 128
height = 56
width = 56
SMALL = {"batch_size": 2, "in_channels": 4, "out_channels": 8, "height": 10, "width": 10}


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels]
