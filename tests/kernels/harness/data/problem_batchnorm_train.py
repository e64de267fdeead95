"""Conv + batch norm + ReLU: in training mode batch norm normalises with batch statistics and updates its
running statistics on every call."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, channels: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


def get_inputs():
    return [torch.randn(8, 3, 6, 6) * 3 + 1]


def get_init_inputs():
    return [4]
