"""Mean over dims (0, 2) of a [B, C, L] tensor: per-channel mean."""

import torch
import torch.nn as nn

batch_size = 128
channels = 512
length = 4096
SMALL = {"batch_size": 8, "channels": 16, "length": 128}


class Model(nn.Module):
    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dims)


def get_inputs():
    return [torch.randn(batch_size, channels, length)]


def get_init_inputs():
    return [(0, 2)]
