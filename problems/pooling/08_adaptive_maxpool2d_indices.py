"""AdaptiveMaxPool2d to 5x7 with return_indices=True: overlapping windows of uneven widths, values and indices."""

import torch
import torch.nn as nn

batch_size = 128
channels = 128
height = 130
width = 130
SMALL = {"batch_size": 2, "channels": 3, "height": 13, "width": 11}


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveMaxPool2d((5, 7), return_indices=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pool(x)


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return []
