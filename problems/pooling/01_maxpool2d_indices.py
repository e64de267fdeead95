"""MaxPool2d 3x3, stride 2, padding 1 with return_indices=True: the pooled values and the flat index of each maximum."""

import torch
import torch.nn as nn

batch_size = 128
channels = 64
height = 192
width = 192
SMALL = {"batch_size": 2, "channels": 3, "height": 17, "width": 19}


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, return_indices=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pool(x)


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return []
