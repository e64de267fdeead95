"""ResNet stem in training mode, as built: Conv2d 7x7 stride 2 (no bias) + BatchNorm2d (batch statistics) + ReLU + MaxPool2d 3x3 stride 2."""

import torch
import torch.nn as nn

batch_size = 32
in_channels = 3
out_channels = 64
image_size = 224
SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 8, "image_size": 31}


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 7, stride=2, padding=3, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.bn(self.conv(x))))


def get_inputs():
    return [torch.randn(batch_size, in_channels, image_size, image_size)]


def get_init_inputs():
    return [in_channels, out_channels]
