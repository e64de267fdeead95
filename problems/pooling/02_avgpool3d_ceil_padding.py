"""AvgPool3d 3x3x3, stride 2, padding 1, ceil_mode=True, count_include_pad=False over odd-sized volumes."""

import torch
import torch.nn as nn

batch_size = 32
channels = 32
depth = 65
height = 65
width = 65
SMALL = {"batch_size": 2, "channels": 3, "depth": 9, "height": 8, "width": 7}


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.AvgPool3d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


def get_inputs():
    return [torch.randn(batch_size, channels, depth, height, width)]


def get_init_inputs():
    return []
