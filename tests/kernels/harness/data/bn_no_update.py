"""Batch statistics, as in training mode, but the running statistics are never updated."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class ModelNew(nn.Module):
    def __init__(self, channels: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        return torch.relu(F.batch_norm(self.conv(x), None, None, bn.weight, bn.bias, True, 0.0, bn.eps))
