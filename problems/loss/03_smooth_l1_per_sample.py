"""Smooth L1 loss with beta, no reduction, then a per-sample mean over dim 1: result [batch]."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 16384
dim = 16384
SMALL = {"batch_size": 64, "dim": 256}


class Model(nn.Module):
    def __init__(self, beta: float):
        super().__init__()
        self.beta = beta

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(predictions, targets, reduction="none", beta=self.beta).mean(dim=1)


def get_inputs():
    return [torch.randn(batch_size, dim), torch.randn(batch_size, dim)]


def get_init_inputs():
    return [0.5]
