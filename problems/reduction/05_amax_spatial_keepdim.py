"""amax over the spatial dims (1, 2) of an NHWC tensor, keepdim: global max pool."""

import torch
import torch.nn as nn

batch_size = 64
height = 128
width = 128
channels = 256
SMALL = {"batch_size": 2, "height": 16, "width": 16, "channels": 32}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.amax(x, dim=(1, 2), keepdim=True)


def get_inputs():
    return [torch.randn(batch_size, height, width, channels)]


def get_init_inputs():
    return []
