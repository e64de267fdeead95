"""ConvTranspose3d (kernel 4, stride 2, padding 1: doubles depth, height and width; with bias), tanh, then a scale."""

import torch
import torch.nn as nn

batch_size = 16
in_channels = 64
out_channels = 32
depth = 8
height = 28
width = 28
SMALL = {"batch_size": 2, "in_channels": 4, "out_channels": 6, "depth": 3, "height": 5, "width": 4}


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, scale: float):
        super().__init__()
        self.up = nn.ConvTranspose3d(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=True)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.up(x)) * self.scale


def get_inputs():
    return [torch.randn(batch_size, in_channels, depth, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, 1.5]
