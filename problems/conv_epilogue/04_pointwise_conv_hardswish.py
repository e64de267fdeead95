"""1x1 (pointwise) Conv2d reducing channels, then Hardswish: a GEMM in conv form."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 32
in_channels = 256
out_channels = 64
height = 56
width = 56
SMALL = {"batch_size": 2, "in_channels": 16, "out_channels": 8, "height": 16, "width": 16}


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(self.conv(x))


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels]
