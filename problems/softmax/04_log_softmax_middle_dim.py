"""Log-softmax over the channel dim 1 of an [N, C, H, W] segmentation map."""

import torch
import torch.nn as nn

batch_size = 64
channels = 64
height = 256
width = 256
SMALL = {"batch_size": 2, "channels": 16, "height": 16, "width": 16}


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.log_softmax = nn.LogSoftmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_softmax(x)


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return []
