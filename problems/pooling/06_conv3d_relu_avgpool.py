"""Conv3d 3x3x3 (padding 1, with bias) + ReLU + AvgPool3d 2x2x2 over video clips."""

import torch
import torch.nn as nn

batch_size = 16
in_channels = 3
out_channels = 32
frames = 16
image_size = 112
SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 4, "frames": 5, "image_size": 9}


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, 3, padding=1)
        self.pool = nn.AvgPool3d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.conv(x)))


def get_inputs():
    return [torch.randn(batch_size, in_channels, frames, image_size, image_size)]


def get_init_inputs():
    return [in_channels, out_channels]
