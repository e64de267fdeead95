"""3x3x3 Conv3d over a video clip (padding 1, with bias) followed by ReLU."""

import torch
import torch.nn as nn

batch_size = 16
in_channels = 32
out_channels = 64
frames = 16
height = 56
width = 56
SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 8, "frames": 4, "height": 7, "width": 9}


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def get_inputs():
    return [torch.randn(batch_size, in_channels, frames, height, width)]


def get_init_inputs():
    return [in_channels, out_channels]
