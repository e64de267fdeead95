"""Candidate for activation/03_gelu_tanh (plain PyTorch): the tanh-approximate GELU formula written out."""

import math

import torch
import torch.nn as nn

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inner = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + torch.tanh(inner))
