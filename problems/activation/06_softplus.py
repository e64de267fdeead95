"""Softplus with beta and threshold: log(1 + exp(beta x)) / beta, linear above threshold."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 65536
dim = 4096
SMALL = {"batch_size": 64, "dim": 256}


class Model(nn.Module):
    def __init__(self, beta: float, threshold: float):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(x, beta=self.beta, threshold=self.threshold)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return [2.0, 10.0]
