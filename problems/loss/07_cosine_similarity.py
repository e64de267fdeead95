"""Cosine similarity loss: mean over rows of 1 - cos(a_i, b_i) (F.cosine_similarity along dim 1)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 65536
dim = 4096
SMALL = {"batch_size": 64, "dim": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (1.0 - F.cosine_similarity(a, b, dim=1, eps=1e-8)).mean()


def get_inputs():
    return [torch.randn(batch_size, dim), torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
