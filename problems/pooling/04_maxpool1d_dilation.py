"""MaxPool1d of width 5, stride 2, padding 2, dilation 2, ceil_mode=True over long sequences."""

import torch
import torch.nn as nn

batch_size = 64
channels = 256
length = 16411
SMALL = {"batch_size": 2, "channels": 3, "length": 37}


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool1d(5, stride=2, padding=2, dilation=2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


def get_inputs():
    return [torch.randn(batch_size, channels, length)]


def get_init_inputs():
    return []
