"""Conv2d (no bias) + BatchNorm in inference (F.batch_norm, training=False, running-stat buffers) + SiLU."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 64
in_channels = 128
out_channels = 128
height = 56
width = 56
kernel_size = 3
SMALL = {"batch_size": 2, "in_channels": 8, "out_channels": 8, "height": 12, "width": 12}


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, eps: float):
        super().__init__()
        self.eps = eps
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn_weight = nn.Parameter(1.0 + 0.1 * torch.randn(out_channels))
        self.bn_bias = nn.Parameter(0.1 * torch.randn(out_channels))
        self.register_buffer("running_mean", 0.1 * torch.randn(out_channels))
        self.register_buffer("running_var", 0.5 + torch.rand(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.batch_norm(
            self.conv(x), self.running_mean, self.running_var, self.bn_weight, self.bn_bias,
            training=False, eps=self.eps,
        )
        return F.silu(y)


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, 1e-5]
