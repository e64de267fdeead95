"""A correct candidate for cheats/problem_scale_relu.py whose every call takes 30 ms (timing-budget test)."""

import time

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x, y):
        time.sleep(0.03)
        return torch.relu(x * self.scale + y)
