"""BatchNorm in inference mode (F.batch_norm, training=False) with running stats as buffers, [N, C, H, W]."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 128
channels = 128
height = 128
width = 128
SMALL = {"batch_size": 2, "channels": 8, "height": 16, "width": 16}


class Model(nn.Module):
    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(channels))
        self.bias = nn.Parameter(0.1 * torch.randn(channels))
        self.register_buffer("running_mean", 0.1 * torch.randn(channels))
        self.register_buffer("running_var", 0.5 + torch.rand(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
        )


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [channels, 1e-5]
