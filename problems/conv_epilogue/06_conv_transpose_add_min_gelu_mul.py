"""ConvTranspose2d (stride 2) then add a scalar, min with a 0-d tensor made in forward, exact GELU, multiply by a scalar."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 64
in_channels = 64
out_channels = 32
height = 64
width = 64
SMALL = {"batch_size": 2, "in_channels": 4, "out_channels": 4, "height": 8, "width": 8}


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, add_value: float, multiply_value: float):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)
        self.add_value = add_value
        self.multiply_value = multiply_value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x) + self.add_value
        y = torch.min(y, torch.tensor(0.25, device=y.device))
        return F.gelu(y) * self.multiply_value


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, 0.5, 2.0]
