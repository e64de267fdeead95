"""Fixture problem: x @ w, each output row from one input row (the incremental cheat's target: a burst
call whose inputs changed in a few rows needs only those rows recomputed)."""

import torch
import torch.nn as nn

ROWS, K, N = 64, 512, 256


class Model(nn.Module):
    def __init__(self, k, n):
        super().__init__()
        self.w = nn.Parameter(torch.randn(k, n) / k ** 0.5)

    def forward(self, x):
        return x @ self.w


def get_inputs():
    return [torch.randn(ROWS, K)]


def get_init_inputs():
    return [K, N]
