"""Huber loss with delta (nn.HuberLoss, mean reduction)."""

import torch
import torch.nn as nn

batch_size = 32768
dim = 8192
SMALL = {"batch_size": 64, "dim": 256}


class Model(nn.Module):
    def __init__(self, delta: float):
        super().__init__()
        self.loss = nn.HuberLoss(delta=delta)

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.loss(predictions, targets)


def get_inputs():
    return [torch.randn(batch_size, dim), 1.5 * torch.randn(batch_size, dim)]


def get_init_inputs():
    return [1.0]
