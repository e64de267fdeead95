"""Grouped dilated ConvTranspose2d (kernel 3, stride 2, dilation 3, 4 groups, no bias; doubles H and W), then SiLU."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 32
in_channels = 256
out_channels = 256
groups = 4
height = 32
width = 32
SMALL = {"batch_size": 2, "in_channels": 8, "out_channels": 12, "height": 7, "width": 6}


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=3, stride=2, padding=3, output_padding=1,
                                     dilation=3, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.up(x))


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, groups]
