"""Depthwise 3x3 Conv2d with bias (groups = channels, padding 1) + ReLU, 256 channels at 112x112: memory-bound.

Not a tensor-core workload: cuDNN runs it in fp32 FMA; the 0.8 GB input is read once and the output written once.
"""

import torch
import torch.nn as nn

batch_size = 64
channels = 256
height = 112
width = 112
SMALL = {"batch_size": 2, "channels": 6, "height": 13, "width": 11}


class Model(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [channels]
