"""GroupNorm (nn.GroupNorm, affine) of a [N, C, H, W] feature map."""

import torch
import torch.nn as nn

batch_size = 128
channels = 256
height = 96
width = 96
groups = 32
SMALL = {"batch_size": 2, "channels": 16, "height": 16, "width": 16, "groups": 4}


class Model(nn.Module):
    def __init__(self, groups: int, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-5)
        with torch.no_grad():
            self.norm.weight.copy_(1.0 + 0.1 * torch.randn(channels))
            self.norm.bias.copy_(0.1 * torch.randn(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [groups, channels]
