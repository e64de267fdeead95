"""Fixture problem: relu(x * scale + y), tiny under SMALL."""

import torch
import torch.nn as nn

N = 256
SMALL = {"N": 32}


class Model(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x, y):
        return torch.relu(x * self.scale + y)


def get_inputs():
    return [torch.randn(N, N), torch.randn(N, N)]


def get_init_inputs():
    return [2.0]
